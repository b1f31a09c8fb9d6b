"""The API page in a real browser (Debian's chromium, headless): it renders every operation of
``/openapi.json`` with nothing but what the front serves."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.ingest_api.served import ServedApp

pytestmark = pytest.mark.slow

_OPERATION = re.compile(
    r'opblock-summary-method">([A-Z]+)</span>.*?class="opblock-summary-path" data-path="([^"]+)"',
    re.DOTALL,
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed (CI=true: .ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with ServedApp(tmp_path_factory.mktemp("docs")) as app:
        yield app


def _browse(*arguments: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=20000",
            *arguments,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_the_api_page_renders_every_operation_of_the_document(served: ServedApp) -> None:
    document = requests.get(served.base_url + "/openapi.json", timeout=10).json()
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }

    dom = _browse("--dump-dom", url=served.base_url + "/").stdout  # through the redirect

    rendered = {(method, html.unescape(path)) for method, path in _OPERATION.findall(dom)}
    assert rendered == documented
    assert "assoc-ingest" in dom


def test_the_api_page_can_be_pictured(served: ServedApp, tmp_path: Path) -> None:
    picture = tmp_path / "docs.png"
    _browse(f"--screenshot={picture}", "--window-size=1280,1600", url=served.base_url + "/docs")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000  # a blank page is a few kilobytes
