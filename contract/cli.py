"""``factory contract``: the contract as a table, or as the generated schema document."""

from __future__ import annotations

import sys

import orjson
from rich.console import Console
from rich.table import Table

from contract.asyncapi import schema_document
from contract.codec import MAX_PAYLOAD_BYTES
from contract.topics import DEFAULT_QOS, RETAINED_CHANNELS, ROOT, Channel

_WHO = {Channel.CMD: "service → robot"}


def render_schema() -> bytes:
    """The schema document exactly as ``docs/contract.schema.json`` holds it."""
    return (
        orjson.dumps(schema_document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


def print_contract(*, schema: bool) -> None:
    if schema:
        sys.stdout.buffer.write(render_schema())
        return
    table = Table(title=f"Topics: {ROOT}/{{site}}/{{area}}/{{line}}/{{robot}}/{{channel}}")
    for column in ("channel", "direction", "QoS", "retained"):
        table.add_column(column)
    for channel in Channel:
        table.add_row(
            channel.value,
            _WHO.get(channel, "robot → service"),
            str(DEFAULT_QOS[channel]),
            "yes" if channel in RETAINED_CHANNELS else "no",
        )
    console = Console()
    console.print(table)
    console.print(
        f"Payloads: JSON objects ≤ {MAX_PAYLOAD_BYTES} bytes with v, robot, ts, boot, seq. "
        "`factory contract --schema` prints every payload's schema."
    )
