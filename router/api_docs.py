"""``GET /docs``: the API reference as a Swagger UI page, served entirely by this service.

Swagger UI's script, style sheet and icon come from the ``openapi-ui-bundles`` package (Swagger
UI 5, which renders OpenAPI 3.1 documents such as Litestar's) and are served under
``/docs/swagger-ui/``; the page loads ``/schema/openapi.json``, the contract document. Nothing is
fetched from another host, so the page works on a network without internet access.

The page and its files hold no information about the API and answer without a key. The document
keeps its rule (a key when keys are configured): when it answers 401, the page asks for a key
once, keeps it in the browser tab's session storage and sends it as ``X-API-Key`` with the
document request and with "Try it out" calls.
"""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.handlers import HTTPRouteHandler
from litestar.response import File
from openapi_ui_bundles import swagger_ui

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/swagger-ui"
DOCUMENT_PATH = "/schema/openapi.json"
# The files of the bundle the page uses, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The bundle changes only with the installed package; browsers may keep it for a day.
ASSET_CACHE = CacheControlHeader(max_age=86400)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Adaptive Router API</title>
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<style>body {{ margin: 0 }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>
const KEY = "adaptive-router-api-key";
const DOCUMENT = "{DOCUMENT_PATH}";
window.ui = SwaggerUIBundle({{
  url: DOCUMENT,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  requestInterceptor: (request) => {{
    const key = sessionStorage.getItem(KEY);
    if (key && !request.headers["Authorization"] && !request.headers["X-API-Key"]) {{
      request.headers["X-API-Key"] = key;
    }}
    return request;
  }},
  responseInterceptor: (response) => {{
    if (response.status === 401 && new URL(response.url).pathname === DOCUMENT) {{
      const key = window.prompt("This service needs an API key to show its API. API key:");
      if (key) {{
        sessionStorage.setItem(KEY, key.trim());
        window.location.reload();
      }}
    }}
    return response;
  }},
}});
</script>
</body>
</html>
"""


@get(DOCS_PATH, media_type=MediaType.HTML, sync_to_thread=False, include_in_schema=False)
def docs_page() -> Response[str]:
    return Response(PAGE, media_type=MediaType.HTML)


def _asset_handler(name: str, media_type: str) -> HTTPRouteHandler:
    path = swagger_ui.static_path / name

    @get(f"{ASSETS_PATH}/{name}", name=f"swagger-ui:{name}", sync_to_thread=False,
         include_in_schema=False, cache_control=ASSET_CACHE)
    def asset() -> File:
        return File(path, media_type=media_type, content_disposition_type="inline")

    return asset


def docs_handlers() -> list[HTTPRouteHandler]:
    """The page and one route per file of the bundle it uses (no directory is served)."""
    return [docs_page, *(_asset_handler(name, media) for name, media in ASSETS.items())]
