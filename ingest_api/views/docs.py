"""The API page a person reads (``GET /docs``): Swagger UI rendering ``/openapi.json``, served
by the front itself from the files the ``swagger-ui-py`` package ships (Apache-2.0), so the
page needs nothing from outside (no CDN). ``GET /`` redirects there.

The package is located without importing it (its own module pulls in a template engine the
front does not use); only the files the page loads are served, by name.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from aiohttp import web

from ingest_api.errors import ApiError

__all__ = ["ASSETS", "DOCS_PATH", "docs_asset", "docs_page", "root"]

DOCS_PATH = "/docs"
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
"""The files of the page, by name, with their media type."""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>assoc-ingest API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <style>body { margin: 0; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      tryItOutEnabled: false,
    });
  </script>
</body>
</html>
"""


@cache
def _static_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@cache
def _asset(name: str) -> bytes:
    return (_static_dir() / name).read_bytes()


async def root(request: web.Request) -> web.StreamResponse:
    """``GET /``: a redirect (302) to the API page."""
    return web.Response(status=302, headers={"Location": DOCS_PATH})


async def docs_page(request: web.Request) -> web.StreamResponse:
    """``GET /docs``: the API page (HTML)."""
    return web.Response(text=_PAGE, content_type="text/html", charset="utf-8")


async def docs_asset(request: web.Request) -> web.StreamResponse:
    """``GET /docs/assets/{name}``: one of ``ASSETS``; 404 ``asset_not_found`` otherwise."""
    name = request.match_info["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "asset_not_found", f"The API page has no file {name[:100]!r}.")
    return web.Response(
        body=_asset(name),
        content_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
