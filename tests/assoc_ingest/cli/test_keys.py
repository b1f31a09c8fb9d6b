"""``assoc-ingest keys``: an administrator creates, lists and revokes API keys in the store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from assoc_ingest.cli import app
from ingest_api.keys import secret_matches
from workers.backends import store_session
from workers.ground.settings import Settings
from workers.store.records import ApiKeyRecord

# The embedded store under tmp_path, whatever the environment of the test run says.
EMBEDDED = {"MONGODB_URL": None, "INGEST_MONGODB_URL": None, "INGEST_DATA_DIR": None}


def cli(*args: str | Path) -> Result:
    return CliRunner(env=EMBEDDED).invoke(app, [str(arg) for arg in args])


def stored_key(data_dir: Path, key_id: str) -> ApiKeyRecord | None:
    async def fetch() -> ApiKeyRecord | None:
        async with store_session(Settings().model_copy(update={"data_dir": data_dir})) as store:
            return await store.get_api_key(key_id)

    with pytest.MonkeyPatch.context() as patch:
        for name in EMBEDDED:
            patch.delenv(name, raising=False)
        return asyncio.run(fetch())


def create(data_dir: Path, *extra: str) -> dict[str, object]:
    result = cli(
        "keys",
        "create",
        "--user",
        "alice",
        "--role",
        "reporter",
        *extra,
        "--json",
        "--data-dir",
        data_dir,
    )
    assert result.exit_code == 0, result.output
    created: dict[str, object] = json.loads(result.stdout)
    return created


def test_a_created_key_verifies_against_the_stored_record(tmp_path: Path) -> None:
    created = create(tmp_path, "--group", "soc", "--days", "30")
    record = stored_key(tmp_path, str(created["apiKey"]))
    assert record is not None
    assert secret_matches(record, str(created["apiSecret"]))
    assert record.user_id == "alice"
    assert record.roles == ("reporter",)
    assert record.groups == ("soc",)
    assert record.expires_at is not None
    assert record.expires_at - record.created_at == 30 * 86_400


def test_the_store_keeps_a_digest_not_the_secret(tmp_path: Path) -> None:
    created = create(tmp_path)
    record = stored_key(tmp_path, str(created["apiKey"]))
    assert record is not None
    assert record.secret_digest != created["apiSecret"]
    assert str(created["apiSecret"]) not in repr(record)


def test_create_without_json_prints_the_key_and_secret_once(tmp_path: Path) -> None:
    result = cli(
        "keys",
        "create",
        "--user",
        "bob",
        "--role",
        "admin",
        "--role",
        "user",
        "--data-dir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    key_id, secret = lines["api-key"].strip(), lines["api-secret"].strip()
    record = stored_key(tmp_path, key_id)
    assert record is not None
    assert secret_matches(record, secret)
    assert record.roles == ("admin", "user")


def test_an_unknown_role_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    result = cli("keys", "create", "--user", "alice", "--role", "root", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert "unknown role" in result.stderr
    listed = cli("keys", "list", "--json", "--data-dir", tmp_path)
    assert json.loads(listed.stdout) == []


def test_list_shows_every_key_but_never_a_secret_or_digest(tmp_path: Path) -> None:
    first = create(tmp_path)
    second = create(tmp_path, "--role", "user")
    result = cli("keys", "list", "--json", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [key["apiKey"] for key in listed] == [first["apiKey"], second["apiKey"]]
    assert all(key["status"] == "active" for key in listed)
    table = cli("keys", "list", "--data-dir", tmp_path).stdout
    assert str(first["apiKey"]) in table and str(second["apiKey"]) in table
    for created in (first, second):
        record = stored_key(tmp_path, str(created["apiKey"]))
        assert record is not None
        for output in (result.stdout, table):
            assert record.secret_digest not in output
            assert str(created["apiSecret"]) not in output


def test_a_revoked_key_is_listed_as_revoked(tmp_path: Path) -> None:
    created = create(tmp_path)
    result = cli("keys", "revoke", str(created["apiKey"]), "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    record = stored_key(tmp_path, str(created["apiKey"]))
    assert record is not None
    assert record.revoked
    listed = json.loads(cli("keys", "list", "--json", "--data-dir", tmp_path).stdout)
    assert listed[0]["status"] == "revoked"


def test_revoking_an_unknown_key_fails_with_a_clear_error(tmp_path: Path) -> None:
    result = cli("keys", "revoke", "ak_nosuchkey", "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert "no API key ak_nosuchkey" in result.stderr
