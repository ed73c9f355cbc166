"""The command sender's last guard: a command the contract cannot carry costs only itself."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from api.maintenance.command_sender import CommandSender
from contract.payloads import TS_MAX
from contract.topics import Channel, Topic
from engine import CommandSpec


def test_a_command_past_the_contracts_last_time_is_dropped_and_the_next_goes_out() -> None:
    published: list[str] = []
    sent = Counter("sent", "sent", ["type"], registry=CollectorRegistry())
    topic = Topic("plant-1", "body-shop", "line-1", "weld-01", Channel.CMD)
    sender = CommandSender(
        "svc-1234", lambda t, p: published.append(t) is None, sent, {"weld-01": topic}
    )

    def spec(n: int, start_ts: float) -> CommandSpec:
        return CommandSpec(
            id=f"wo-{n}.schedule",
            type="schedule_maintenance",
            robot="weld-01",
            work_order=f"wo-{n}",
            expires_ts=start_ts + 3600.0,
            component="gripper",
            start_ts=start_ts,
            duration_s=3600.0,
        )

    now_ts = TS_MAX - 600.0
    assert sender.send_spec(spec(1, TS_MAX + 100.0), now_ts) is False
    assert published == []
    assert sender.send_spec(spec(2, now_ts + 60.0), now_ts) is False  # its expiry is past too
    assert sender.send_spec(spec(3, now_ts - 4000.0), now_ts - 4000.0) is True
    assert published == [str(topic)]
