"""The README's configuration table names every setting the code reads, and the quick start is
the two commands CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from workers.ground.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def environment_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            names.add(alias.choices[0])
        else:
            names.add(f"INGEST_{name.upper()}")
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert environment_names() <= table


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert table <= environment_names()


def test_the_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()[1:]]
    assert [c for c in commands if c] == ["make run", "make test"]
