from __future__ import annotations

from pathlib import Path

import pytest
from litestar.routes import HTTPRoute

from router.app import create_app
from tests.support import make_settings

V1_HANDLERS = [
    ("/v1/route", "POST"),
    ("/v1/feedback", "POST"),
    ("/v1/decisions/{decision_id}", "GET"),
]


@pytest.mark.parametrize(("path", "method"), V1_HANDLERS)
def test_v1_handlers_resolve_one_dependency_batch(path: str, method: str, tmp_path: Path) -> None:
    # Several dependencies on one level are resolved in an anyio task group per request, which
    # cost more than the providers themselves on the hot path (README "Benchmark").
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/deps.db"))
    routes = [r for r in app.routes if isinstance(r, HTTPRoute) and r.path_format == path]
    assert len(routes) == 1
    _, kwargs_model = routes[0].route_handler_map[method]  # type: ignore[index]
    assert [len(batch) for batch in kwargs_model.dependency_batches] == [1]
