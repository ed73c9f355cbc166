"""Reading PromQL for the dashboard checks: which metric names a query reads, and which series
names a ``/metrics`` exposition carries. Pure; imported by ``tests/test_grafana_dashboard.py``.

A name in a query must match a series Prometheus stores: a counter ``x`` is exposed (and stored)
as ``x_total``, a histogram as ``x_bucket``/``x_sum``/``x_count``, so a bare ``x`` in a query
would silently show nothing. The exposition is read with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "atan2"}
)
_TOKEN = re.compile(
    r"(?P<duration>\d+(?:ms|[smhdwy])\b)"
    r"|(?P<number>0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
)
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>[^,]+),)?\s*[A-Za-z_]\w*\s*\)\s*$"
)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana ``$variables`` allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers (strings already emptied)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables
    names = set()
    for token in _TOKEN.finditer(text):
        name = token["name"]
        if name and not token["call"] and name not in _KEYWORDS:
            names.add(name)
    return names


def query_metric_names(query: str) -> set[str]:
    """Metric names in a panel expression or a template variable query (``label_values``)."""
    if match := _LABEL_VALUES.match(query):
        return promql_metric_names(match["selector"] or "")
    return promql_metric_names(query)


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, query)`` for every panel target and every query variable."""
    found: list[tuple[str, str]] = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((f"panel {panel.get('title')!r} {target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.append((f"variable {variable['name']!r}", text))
    return found


#: The series names a metric family of each type is stored under (OpenMetrics / text 0.0.4).
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def exported_series(exposition: str) -> set[str]:
    """Names of the series a ``/metrics`` text declares or carries, as Prometheus stores them:
    a counter ``x`` is ``x_total``, a histogram ``x_bucket``, ``x_sum``, ``x_count``. A family
    the service declares without samples yet (a RUL before the engine has an estimate) counts:
    its panel shows "no data" until then, which is true, not a typo."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def missing_names(dashboard: dict[str, Any], series: set[str]) -> list[str]:
    return [
        f"{where}: {name}"
        for where, query in dashboard_queries(dashboard)
        for name in sorted(query_metric_names(query))
        if name not in series
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        (
            'factory_robot_reading{metric="vibration_rms_mm_s", robot=~"$robot"}',
            {"factory_robot_reading"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))",
            {"x_bucket"},
        ),
        ("sum(rate(a_total[5m])) by (channel) / ignoring(x) group_left b", {"a_total", "b"}),
        ("scalar(max(clock)) - last_seen offset 1h > bool 0", {"clock", "last_seen"}),
        ('count_values("state", s) and on (robot) t unless u', {"s", "t", "u"}),
        ('label_replace(v, "dst", "$1", "src", "(.*)") * 1e3 + 0x1f', {"v"}),
        ("x[5m:30s]", {"x"}),
        ("vector(0)", set()),
    ],
)
def test_promql_metric_names(expr: str, expected: set[str]) -> None:
    assert promql_metric_names(expr) == expected


def test_label_values_reads_only_the_selector_metric() -> None:
    assert query_metric_names('label_values(m{line=~"$line"}, robot)') == {"m"}
    assert query_metric_names("label_values(robot)") == set()


def test_series_names_carry_the_type_suffixes_prometheus_stores() -> None:
    text = (
        "# TYPE c counter\nc_total 1\n# TYPE h histogram\n"
        'h_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n# TYPE g gauge\n'
    )
    assert exported_series(text) == {"c_total", "h_bucket", "h_sum", "h_count", "g"}
    dashboard = {
        "panels": [{"title": "p", "targets": [{"refId": "A", "expr": "rate(c[1m]) + g + h + u"}]}]
    }
    missing = missing_names(dashboard, exported_series(text))
    assert missing == ["panel 'p' A: c", "panel 'p' A: h", "panel 'p' A: u"]
