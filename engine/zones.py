"""State detection (ISO 13374 block 3): vibration zones and limit states on one severity scale.

Every signal is judged on four ordered levels, ``severity`` 0–3. Vibration uses the absolute
ISO 10816-1 zones A/B/C/D of the robot kind's machine class (robots are outside the standard's
scope; the zones are a documented proxy scale). The other signals use rises over their learned
healthy baseline, named normal/watch/alert/danger. A value exactly on a boundary belongs to the
upper level (at 0.71 mm/s a class I machine is in zone B).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import SignalRule

#: ISO 10816-1 zone boundaries A/B, B/C, C/D in mm/s RMS (10–1000 Hz), per machine class.
ISO_10816_ZONES_MM_S: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
    "III": (1.8, 4.5, 11.2),
    "IV": (2.8, 7.1, 18.0),
}
ISO_ZONE_NAMES = ("A", "B", "C", "D")
LIMIT_NAMES = ("normal", "watch", "alert", "danger")
#: Alarm severity by level; levels 0 and 1 raise no alarm.
ALARM_SEVERITY = {2: "warning", 3: "critical"}
#: What each level means for the machine (ISO 10816-1 zone wording, reused for limits).
LEVEL_MEANING = (
    "as new",
    "acceptable for unrestricted long-term operation",
    "tolerable only for a limited time: plan maintenance",
    "damage likely: failure level",
)


def vibration_zone(value_mm_s: float, iso_class: str) -> str:
    """The ISO 10816-1 zone (A–D) of a vibration RMS value for a machine class (I–IV)."""
    try:
        boundaries = ISO_10816_ZONES_MM_S[iso_class]
    except KeyError:
        raise ValueError(f"unknown ISO 10816-1 class {iso_class!r}; use I, II, III or IV") from None
    return ISO_ZONE_NAMES[level_of(value_mm_s, boundaries)]


def level_of(value: float, boundaries: tuple[float, float, float]) -> int:
    """0–3: how many of the three ascending boundaries ``value`` has reached."""
    level = 0
    for boundary in boundaries:
        if value >= boundary:
            level += 1
    return level


@dataclass(frozen=True, slots=True)
class Limits:
    """Resolved limits of one signal given its baseline: absolute values of the three boundaries
    and the failure level prognostics extrapolates the trend to (normally the top boundary)."""

    boundaries: tuple[float, float, float]
    baseline: float
    failure: float
    names: tuple[str, str, str, str]
    description: str

    def name(self, level: int) -> str:
        return self.names[level]


def resolve_limits(
    rule: SignalRule, baseline: float, kind_class: str, unit: str, danger: float | None = None
) -> Limits:
    """Turn a rule and a baseline into absolute boundaries (and a human description).

    ``danger`` (an absolute failure level set for the robot kind) replaces the rule's failure
    level; for rise rules the watch and alert levels keep their proportion to it.
    """
    if rule.mode == "iso10816":
        iso_class = rule.iso_class or kind_class
        if iso_class not in ISO_10816_ZONES_MM_S:
            raise ValueError(f"unknown ISO 10816-1 class {iso_class!r}; use I, II, III or IV")
        bounds = ISO_10816_ZONES_MM_S[iso_class]
        failure = danger if danger is not None else bounds[2]
        text = f"ISO 10816-1 class {iso_class} zones"
        if failure != bounds[2]:
            text += f", failure level {failure:g} {unit}"
        return Limits(bounds, baseline, failure, ISO_ZONE_NAMES, text)
    if rule.mode == "rise_abs":
        rises = (rule.watch, rule.alert, rule.failure)
    else:
        rises = (baseline * rule.watch, baseline * rule.alert, baseline * rule.failure)
    if danger is not None and rises[2] > 0.0:
        scale = (danger - baseline) / rises[2]
        rises = (rises[0] * scale, rises[1] * scale, danger - baseline)
    bounds = (baseline + rises[0], baseline + rises[1], baseline + rises[2])
    if rule.mode == "rise_abs":
        text = f"rise over baseline {baseline:.3g} {unit}: +{rises[1]:.3g}/+{rises[2]:.3g} {unit}"
    else:
        text = (
            f"rise over baseline {baseline:.3g} {unit}: "
            f"+{rises[1] / baseline * 100:.3g} %/+{rises[2] / baseline * 100:.3g} %"
        )
    return Limits(bounds, baseline, bounds[2], LIMIT_NAMES, text)


def trusted_baseline(rule: SignalRule, learned: float, nominal: float) -> tuple[float, str]:
    """The baseline to use and where it came from (``learned`` or ``nominal``).

    A learned baseline more than ``baseline_max_shift`` away from nominal is distrusted, either
    way. Far above: the component was already worn when tracking began, and must not declare its
    raised level healthy. Far below: the robot was learning on a light product (the nominal
    values are full-load readings), and the next full-load product would look like wear.
    """
    allowed = (
        nominal * rule.baseline_max_shift if rule.mode == "rise_rel" else rule.baseline_max_shift
    )
    if abs(learned - nominal) > allowed:
        return nominal, "nominal"
    return learned, "learned"
