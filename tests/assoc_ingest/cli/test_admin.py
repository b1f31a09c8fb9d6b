"""Every administration command explains itself with ``--help`` and offers the options
scripts rely on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from assoc_ingest.cli import app

COMMANDS = {
    ("keys", "create"): {"--json", "--data-dir"},
    ("keys", "list"): {"--json", "--data-dir"},
    ("keys", "revoke"): {"--data-dir"},
    ("types", "list"): {"--json", "--data-dir"},
    ("types", "add"): {"--json", "--data-dir", "--primary", "--non-primary", "--file-action"},
    ("types", "remove"): {"--data-dir"},
    ("dlq", "list"): {"--json", "--limit"},
    ("dlq", "replay"): {"--json", "--limit"},
}


# The IDs name the command alone: the order of a set changes from one run to the next.
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_admin_command_has_help_naming_its_options(command: tuple[str, str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    for option in COMMANDS[command]:
        assert option in result.stdout


@pytest.mark.parametrize("group", ["keys", "types", "dlq"])
def test_a_group_without_a_command_lists_its_commands(group: str) -> None:
    result = CliRunner().invoke(app, [group])
    listed = {name for (g, name) in COMMANDS if g == group}
    for name in listed:
        assert name in result.output
