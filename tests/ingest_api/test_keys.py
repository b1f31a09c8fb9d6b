"""API keys: the secret is shown once, stored only as a digest, and verified in constant time."""

from __future__ import annotations

import hashlib

import pytest

from ingest_api.keys import ROLES, digest_secret, new_api_key, secret_matches

NOW = 1_700_000_000.0


def test_a_new_key_verifies_with_its_own_secret() -> None:
    record, secret = new_api_key("alice", ["reporter"], ["soc"], 30, NOW)
    assert secret_matches(record, secret)


def test_a_new_key_does_not_verify_with_another_secret() -> None:
    record, secret = new_api_key("alice", ["reporter"], [], None, NOW)
    assert not secret_matches(record, secret + "x")
    assert not secret_matches(record, "")


def test_the_record_keeps_only_a_digest_of_the_secret() -> None:
    record, secret = new_api_key("alice", ["reporter"], [], None, NOW)
    assert secret not in repr(record)
    assert record.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert digest_secret(secret) == record.secret_digest


def test_key_ids_carry_the_ak_prefix_and_are_unique() -> None:
    keys = {new_api_key("alice", ["user"], [], None, NOW)[0].key_id for _ in range(50)}
    assert len(keys) == 50
    assert all(key.startswith("ak_") and len(key) > 20 for key in keys)


def test_secrets_are_long_and_unique() -> None:
    secrets = {new_api_key("alice", ["user"], [], None, NOW)[1] for _ in range(50)}
    assert len(secrets) == 50
    assert all(len(secret) >= 43 for secret in secrets)


def test_the_key_expires_the_given_number_of_days_after_creation() -> None:
    record, _ = new_api_key("alice", ["user"], [], 7, NOW)
    assert record.created_at == NOW
    assert record.expires_at == NOW + 7 * 86_400


def test_a_key_without_days_never_expires() -> None:
    record, _ = new_api_key("alice", ["user"], [], None, NOW)
    assert record.expires_at is None
    assert not record.revoked


def test_user_roles_and_groups_are_recorded_in_order_without_repeats() -> None:
    record, _ = new_api_key("bob", ["reporter", "user", "reporter"], ["b", "a", "b"], None, NOW)
    assert record.user_id == "bob"
    assert record.roles == ("reporter", "user")
    assert record.groups == ("b", "a")


def test_every_documented_role_is_accepted() -> None:
    record, _ = new_api_key("root", list(ROLES), [], None, NOW)
    assert record.roles == ("admin", "user", "reporter", "trusted")


@pytest.mark.parametrize(
    ("user", "roles", "days"),
    [
        ("alice", ["superuser"], None),
        ("alice", ["reporter", "Admin"], None),
        ("alice", [], None),
        ("  ", ["user"], None),
        ("alice", ["user"], 0),
    ],
)
def test_invalid_requests_are_refused(user: str, roles: list[str], days: int | None) -> None:
    with pytest.raises(ValueError):
        new_api_key(user, roles, [], days, NOW)
