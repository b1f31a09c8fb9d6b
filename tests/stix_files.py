"""The real STIX 2.1 files of ``shared/data/stix`` beside the checkout (read there, never
copied into the project; their indicators are never resolved or contacted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

STIX_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "stix"

FILES = (
    "oasis_poisonivy.json",
    "elevator_fireeye_pivy_report_with_indicators.json",
    "elevator_mandiant_apt1_report.json",
    "stix2_sco_examples_bundle.json",
    "cape2stix_test_converted.json",
    "eset_moustachedbouncer_misp2stix21.json",
)


def path(name: str) -> Path:
    found = STIX_DIR / name
    assert found.is_file(), f"the STIX sample {name} is missing: expected it in {STIX_DIR}"
    return found


def load(name: str) -> Any:
    """The parsed JSON of one file (a bundle, or a bare array of objects)."""
    return orjson.loads(path(name).read_bytes())


def objects(name: str) -> list[Any]:
    document = load(name)
    return document if isinstance(document, list) else list(document["objects"])
