"""Fixtures shared by every test package: real backends, unique names, and CI rules.

Under ``CI=true`` a test that needs RabbitMQ fails when the broker is unreachable; elsewhere it
is skipped with the reason. MongoDB tests run only when ``MONGODB_URL`` is set.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of the real RabbitMQ broker (``AMQP_URL`` or the local default)."""
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not _reachable(url):
        message = f"RabbitMQ is not reachable at {urlparse(url).hostname}:{urlparse(url).port}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: broker tests must not skip)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    """URL of a real MongoDB server; the test is skipped when ``MONGODB_URL`` is not set."""
    url = os.environ.get("MONGODB_URL")
    if not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server to test against")
    return url


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses: the base of a queue topology or a database."""
    return f"test-{uuid.uuid4().hex[:12]}"
