"""The API page: served by the front from packaged files, reached from ``/``."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from ingest_api.views.docs import ASSETS

Client = TestClient[Any, Any]


async def test_the_root_redirects_to_the_api_page(client: Client) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/docs"


async def test_the_api_page_loads_only_files_the_front_serves(client: Client) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "/openapi.json" in page
    assert "http://" not in page and "https://" not in page  # nothing from outside
    for name, media_type in ASSETS.items():
        assert f"/docs/assets/{name}" in page or name.endswith(".png")
        asset = await client.get(f"/docs/assets/{name}")
        assert asset.status == 200, name
        assert asset.content_type == media_type
        assert len(await asset.read()) > 100


async def test_an_unknown_file_of_the_page_is_a_404(client: Client) -> None:
    response = await client.get("/docs/assets/swagger-editor.js")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "asset_not_found"
