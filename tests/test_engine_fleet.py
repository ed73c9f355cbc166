"""The operating clock, per-kind configuration and alarm lifecycle of tracked robots."""

import pytest
from test_engine_factory import CONFIG, HOUR, START_TS, make_scenario

from engine import EngineConfig, KindConfig, MaintenanceEngine


def reading(i: int) -> dict[str, float]:
    return {"vibration_rms_mm_s": 0.45 + 0.01 * (i % 3), "temperature_c": 41.0 + 0.1 * (i % 4)}


def test_operating_time_pauses_with_the_robot_state() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    engine.on_state("r11", START_TS, "RUNNING")
    for i in range(1, 13):  # an hour of readings, the first 300 s after the start
        engine.on_reading("r11", START_TS + 300.0 * i, reading(i))
    engine.on_state("r11", START_TS + HOUR + 120, "IDLE")  # stops 2 min after the last reading
    engine.on_state("r11", START_TS + 5 * HOUR, "RUNNING")
    engine.on_reading("r11", START_TS + 5 * HOUR + 300, reading(13))
    assert engine.health("r11").operating_h == pytest.approx((3600 + 120 + 300) / HOUR)
    assert engine.health("r11").state == "RUNNING"


def test_without_states_a_long_gap_counts_two_sample_intervals() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    engine.on_reading("r11", START_TS, reading(0))
    engine.on_reading("r11", START_TS + 300, reading(1))
    engine.on_reading("r11", START_TS + 8 * HOUR, reading(2))
    assert engine.health("r11").operating_h == pytest.approx((300 + 600) / HOUR)


def test_a_reading_older_than_the_last_is_dropped_and_counted() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    engine.on_reading("r11", START_TS + 600, reading(0))
    engine.on_reading("r11", START_TS + 300, {"vibration_rms_mm_s": 9.0})
    track = engine.fleet.robot("r11")
    assert track.late_readings == 1
    assert track.signals["vibration_rms_mm_s"].level == pytest.approx(0.45)


def test_settings_can_be_overridden_per_kind() -> None:
    config = EngineConfig(kinds={"welder": {"ewma_alpha": 0.5, "baseline_readings": 10}})
    assert config.for_kind("welder").ewma_alpha == 0.5
    assert config.for_kind("painter") == KindConfig()
    engine = MaintenanceEngine(make_scenario(), "reactive", config)
    assert engine.fleet.robot("r11").signals["temperature_c"].alpha == 0.5
    with pytest.raises(ValueError, match=r"unknown setting\(s\) ewma; use fields of KindConfig"):
        EngineConfig(kinds={"welder": {"ewma": 0.5}})


def test_alarms_escalate_and_clear_with_hysteresis() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    ts = START_TS
    levels = [0.45] * 30 + [2.0] * 30 + [5.0] * 30 + [1.78] * 30 + [1.6] * 30
    for i, level in enumerate(levels):
        ts = START_TS + 300.0 * i
        engine.on_reading("r11", ts, {"vibration_rms_mm_s": level + 0.001 * (i % 5)})
        if i == 59:
            [warning] = engine.alarms()
            assert (warning.severity, warning.limit, warning.component) == (
                "warning",
                "C",
                "reducer-j2",
            )
            assert warning.message.startswith("vibration 1.81 mm/s RMS in zone C of ISO 10816-1")
            assert "(≥ 1.8 mm/s RMS): tolerable only for a limited time" in warning.message
        if i == 89:
            [critical] = engine.alarms()
            assert (critical.severity, critical.limit) == ("critical", "D")
        if i == 119:  # 1.78 is below C (1.8) but within the hysteresis: still a warning
            assert [a.severity for a in engine.alarms()] == ["warning"]
    assert engine.alarms() == []
    history = engine.alarms(active_only=False)
    assert [(a.severity, a.cleared_reason) for a in history] == [
        ("warning", "superseded by a critical alarm"),
        ("critical", "superseded by a warning alarm"),
        ("warning", "back to B"),
    ]
    assert all(a.cleared_ts is not None and a.cleared_ts > a.raised_ts for a in history)


def test_a_baseline_learned_on_a_light_product_does_not_make_full_load_look_like_wear() -> None:
    """The nominal values are full-load readings. A robot that learns its baseline while making
    a light product (current 24 % below nominal) keeps the nominal one, so the next full-load
    product raises no alarm; a baseline a little below nominal is still learned."""
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    light, full = 7.5 * 0.76, 7.5
    for i in range(96):  # 4 operating hours on the light product, then 4 at full load
        current = (light if i < 48 else full) + 0.01 * (i % 3)
        engine.on_reading("r11", START_TS + 300.0 * i, {**reading(i), "motor_current_a": current})
    signal = engine.fleet.robot("r11").signals["motor_current_a"]
    assert (signal.baseline, signal.baseline_source) == (7.5, "nominal")
    assert engine.alarms(active_only=False) == []
    engine.on_reading("r12", START_TS, {"motor_current_a": 7.2})
    for i in range(1, 30):
        engine.on_reading("r12", START_TS + 300.0 * i, {"motor_current_a": 7.2 + 0.01 * (i % 3)})
    assert engine.fleet.robot("r12").signals["motor_current_a"].baseline_source == "learned"
