"""Every ``factory`` command's ``--help`` shows each option's text and default in full.

Typer renders help text as rich markup, where ``[default: …]`` written by hand is a tag and
vanishes ("Broker URL ." was all ``factory tap --help`` said of ``--broker``)."""

from __future__ import annotations

import pytest
import typer
from rich.text import Text
from typer.testing import CliRunner

from factory.cli import app

COMMAND = typer.main.get_command(app)
SUBCOMMANDS = COMMAND.commands  # type: ignore[attr-defined]
COMMANDS = sorted(SUBCOMMANDS)


def helps(name: str) -> list[tuple[str, str]]:
    command = SUBCOMMANDS[name]
    return [(p.name or "?", p.help) for p in command.params if getattr(p, "help", None)]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_texts_survive_markup(name: str) -> None:
    for option, text in helps(name):
        assert Text.from_markup(text).plain == text, f"{name} {option}: {text!r} loses text"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_every_option(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    assert result.exit_code == 0, result.output
    for option, text in helps(name):
        assert text.split("(")[0].strip() in result.output, f"{name} {option}: {text!r}"


def test_tap_help_says_where_the_broker_comes_from() -> None:
    result = CliRunner().invoke(app, ["tap", "--help"], env={"COLUMNS": "250"})
    assert "default: the broker running from --state-dir, else mqtt://127.0.0.1:1883" in (
        " ".join(result.output.split())
    )
