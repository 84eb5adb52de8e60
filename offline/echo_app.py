"""A bare Litestar + msgspec app: the reference that ``router bench`` compares the router with.

``POST /echo`` decodes a body of the same shape as a ``POST /v1/route`` request into msgspec
Structs (unknown fields rejected) and returns it, so it costs what the framework, the server and
JSON decoding and encoding cost and nothing else. ``python -m offline.echo_app`` serves it with
the server settings ``router serve`` uses (uvicorn, one worker, access log off).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import msgspec
from litestar import Litestar, get, post


class EchoTask(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    language: str
    description: str
    framework: str | None = None
    requirements: list[str] = []


class EchoRag(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    examples: int = 0
    avg_similarity: float | None = None
    avg_quality: float | None = None


class EchoContext(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    project_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    rag: EchoRag | None = None


class EchoConstraints(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    models: list[str] | None = None
    templates: list[str] | None = None
    temperatures: list[float] | None = None
    max_cost_usd: float | None = None
    max_latency_s: float | None = None


class EchoRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The shape of a route request, without the router's limits and vocabulary checks."""

    task: EchoTask
    request_id: str | None = None
    context: EchoContext = EchoContext()
    features: dict[str, bool | float | str] = {}
    constraints: EchoConstraints = EchoConstraints()
    objective: str | None = None


class EchoReady(msgspec.Struct, frozen=True):
    status: str


@post("/echo", status_code=200)
async def echo(data: EchoRequest) -> EchoRequest:
    return data


@get("/ready")
async def ready() -> EchoReady:
    return EchoReady(status="ready")


def create_echo_app() -> Litestar:
    """The echo app; no lifespan resources, no plugins."""
    return Litestar(route_handlers=[echo, ready])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the echo app like ``router serve`` serves the router."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m offline.echo_app", description="serve the benchmark echo app"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    uvicorn.run(
        "offline.echo_app:create_echo_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
