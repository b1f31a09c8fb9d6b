"""``assoc-ingest types``: an administrator lists the association types and adds or removes
custom ones; the defaults stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assoc_ingest.cli import app
from schemas import DEFAULT_ASSOCIATION_TYPES

EMBEDDED = {"MONGODB_URL": None, "INGEST_MONGODB_URL": None, "INGEST_DATA_DIR": None}


def cli(*args: str | Path) -> Result:
    return CliRunner(env=EMBEDDED).invoke(app, [str(arg) for arg in args])


def listed_types(data_dir: Path) -> dict[str, dict[str, object]]:
    result = cli("types", "list", "--json", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


def test_a_fresh_store_lists_exactly_the_defaults(tmp_path: Path) -> None:
    listed = listed_types(tmp_path)
    assert set(listed) == {t.name for t in DEFAULT_ASSOCIATION_TYPES}
    assert listed["URL Host"] == {
        "name": "URL Host",
        "primary": "URL",
        "nonPrimary": ["Address", "Host"],
        "fileAction": False,
        "custom": False,
    }
    assert listed["File Traffic"]["fileAction"] is True


def test_an_added_custom_type_is_listed_as_custom(tmp_path: Path) -> None:
    result = cli(
        "types",
        "add",
        "Host to Mutex",
        "--primary",
        "Host",
        "--non-primary",
        "Mutex",
        "--non-primary",
        "UserAgent",
        "--data-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert listed_types(tmp_path)["Host to Mutex"] == {
        "name": "Host to Mutex",
        "primary": "Host",
        "nonPrimary": ["Mutex", "UserAgent"],
        "fileAction": False,
        "custom": True,
    }


def test_a_custom_file_action_is_listed_as_a_file_action(tmp_path: Path) -> None:
    result = cli(
        "types",
        "add",
        "File Beacon",
        "--primary",
        "File",
        "--non-primary",
        "URL",
        "--file-action",
        "--data-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert listed_types(tmp_path)["File Beacon"]["fileAction"] is True


def test_the_table_lists_custom_types_after_the_defaults(tmp_path: Path) -> None:
    cli(
        "types",
        "add",
        "Host to Mutex",
        "--primary",
        "Host",
        "--non-primary",
        "Mutex",
        "--data-dir",
        tmp_path,
    )
    result = cli("types", "list", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("Host to Mutex") and last.endswith("yes")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["url host", "--primary", "URL", "--non-primary", "Host"], "already exists"),
        (["Beacon", "--primary", "Host", "--non-primary", "URL", "--file-action"], "File"),
        (["Odd", "--primary", "Planet", "--non-primary", "URL"], "not a kind"),
    ],
)
def test_an_invalid_custom_type_is_refused_and_not_stored(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    result = cli("types", "add", *args, "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert reason in result.stderr
    assert not [t for t in listed_types(tmp_path).values() if t["custom"]]


def test_a_name_is_unique_among_custom_types_in_any_case(tmp_path: Path) -> None:
    add: list[str | Path] = ["--primary", "Host", "--non-primary", "Mutex", "--data-dir", tmp_path]
    assert cli("types", "add", "Host to Mutex", *add).exit_code == 0
    again = cli("types", "add", "HOST TO MUTEX", *add)
    assert again.exit_code == 1
    assert "already exists" in again.stderr


def test_a_removed_custom_type_is_no_longer_listed(tmp_path: Path) -> None:
    cli(
        "types",
        "add",
        "Host to Mutex",
        "--primary",
        "Host",
        "--non-primary",
        "Mutex",
        "--data-dir",
        tmp_path,
    )
    result = cli("types", "remove", "host to mutex", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Host to Mutex" not in listed_types(tmp_path)


def test_removing_a_default_type_fails_and_keeps_it(tmp_path: Path) -> None:
    result = cli("types", "remove", "File Drop", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert "default association type" in result.stderr
    assert "cannot be removed" in result.stderr
    assert "File Drop" in listed_types(tmp_path)


def test_removing_an_unknown_type_fails(tmp_path: Path) -> None:
    result = cli("types", "remove", "No Such Type", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert "no custom association type" in result.stderr


def test_the_list_says_that_context_names_are_free(tmp_path: Path) -> None:
    result = cli("types", "list", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Context associations" in result.output
    assert "any relationship name" in result.output


def test_the_default_context_relationship_cannot_become_a_custom_type(tmp_path: Path) -> None:
    result = cli(
        "types", "add", "associated", "--primary", "Host", "--non-primary", "ASN",
        "--data-dir", tmp_path,
    )  # fmt: skip
    assert result.exit_code != 0
    assert "default relationship of context" in result.output
