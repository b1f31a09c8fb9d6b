"""Fixtures of the tests of the roof (CLI, importers): where the real feed samples are."""

from __future__ import annotations

from pathlib import Path

import pytest

FEEDS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "feeds"


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    """``shared/data/feeds`` beside the checkout (never copied into the project)."""
    assert FEEDS_DIR.is_dir(), f"the feed samples are missing: expected them in {FEEDS_DIR}"
    return FEEDS_DIR
