"""A bare Litestar + msgspec app: the reference that ``router bench`` compares the router with.

``POST /echo`` decodes a body into the same msgspec Struct as ``POST /v1/route`` (the router's
``RouteRequest``, with its limits and unknown fields rejected) and returns it, so it costs what
the framework, the server and JSON decoding and encoding cost and nothing else.
``python -m offline.bench.echo_app`` serves it with the server ``router serve`` uses (uvicorn with
router/server.py's protocol and the default ``[server]`` limits, one worker, access log off).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import msgspec
from litestar import Litestar, get, post
from litestar.params import JSONBody

from router.public import RouteRequest


class EchoReady(msgspec.Struct, frozen=True):
    status: str


@post("/echo", status_code=200)
async def echo(data: JSONBody[RouteRequest]) -> RouteRequest:
    return data


@get("/ready")
async def ready() -> EchoReady:
    return EchoReady(status="ready")


def create_echo_app() -> Litestar:
    """The echo app; no lifespan resources, no plugins."""
    return Litestar(route_handlers=[echo, ready])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the echo app like ``router serve`` serves the router."""
    from router.public import ServerSettings, create_server_config, run_server

    parser = argparse.ArgumentParser(
        prog="python -m offline.bench.echo_app", description="serve the benchmark echo app"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    server = ServerSettings(log_level=args.log_level)
    config = create_server_config(
        "offline.bench.echo_app:create_echo_app", server, host=args.host, port=args.port, workers=1
    )
    return 0 if run_server(config) else 3


if __name__ == "__main__":
    raise SystemExit(main())
