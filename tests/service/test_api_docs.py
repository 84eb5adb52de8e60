"""``GET /docs``: a Swagger UI page whose every file comes from this service."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings

KEY = "docs-test-key-0123456789"


class References(HTMLParser):
    """Every ``src`` and ``href`` of a page, with its tag."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, value) for name, value in attrs
                       if name in ("src", "href") and value is not None]


async def fetch_page_and_files(client: AsyncTestClient[Any]) -> list[tuple[str, str]]:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = References()
    parser.feed(page.text)
    assert {tag for tag, _ in parser.found} == {"link", "script"}
    base = str(page.url)
    types = []
    for _, reference in parser.found:
        url = urljoin(base, reference)
        assert urlsplit(url).netloc == urlsplit(base).netloc, reference  # relative or same host
        response = await client.get(url)
        assert response.status_code == 200, reference
        assert response.content, reference
        types.append((reference.rsplit(".", 1)[-1], response.headers["content-type"]))
    # No address of another host anywhere in the page (scripts fetch nothing from elsewhere).
    assert "//" not in page.text.replace("<!DOCTYPE html>", "")
    return types


async def test_docs_page_loads_swagger_ui_from_this_service(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db")
    async with AsyncTestClient(create_app(settings)) as client:
        types = dict(await fetch_page_and_files(client))
        assert types["js"].startswith("text/javascript")
        assert types["css"].startswith("text/css")
        assert types["png"] == "image/png"
        script = await client.get("/docs/swagger-ui/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in script.text
        # The page renders the contract document, which answers here without keys.
        assert "/schema/openapi.json" in (await client.get("/docs")).text
        assert (await client.get("/schema/openapi.json")).status_code == 200
        assert (await client.get("/docs/swagger-ui/index.html")).status_code == 404


async def test_with_keys_the_page_is_open_and_the_document_still_needs_a_key(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/router.db",
                             ROUTER__AUTH__API_KEYS=f'{{"{KEY}": "acme"}}',
                             ROUTER__AUTH__ADMIN_TENANTS='["acme"]')
    async with AsyncTestClient(create_app(settings)) as client:
        await fetch_page_and_files(client)
        assert (await client.get("/schema/openapi.json")).status_code == 401
        document = await client.get("/schema/openapi.json", headers={"X-API-Key": KEY})
        assert document.status_code == 200
        assert document.json()["openapi"].startswith("3.1")
