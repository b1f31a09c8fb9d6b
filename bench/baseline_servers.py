"""The raw-stack ceilings the front is measured against, in the same run.

- ``bare``: an aiohttp handler that parses the JSON body and answers 202 (no broker at all);
- ``naive``: the same handler publishing one message per request and waiting for its confirm
  (the design the coalescing publisher replaces).

Run as ``python -m bench.baseline_servers bare|naive --port P [--amqp-url U --topology T]``.
"""

from __future__ import annotations

import argparse
import uuid

import orjson
import uvloop
from aiohttp import web

from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

ACK = orjson.dumps({"message": "acknowledged"})


async def bare_handler(request: web.Request) -> web.Response:
    orjson.loads(await request.read())
    return web.Response(status=202, body=ACK, content_type="application/json")


def naive_app(amqp_url: str, topology: str) -> web.Application:
    queue_key = web.AppKey("queue", RabbitJobQueue)

    async def backends(app: web.Application):  # type: ignore[no-untyped-def]
        queue = RabbitJobQueue(amqp_url, Topology(base=topology))
        await queue.start()
        app[queue_key] = queue
        yield
        await queue.close()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        orjson.loads(body)
        await request.app[queue_key].publish(body, message_id=str(uuid.uuid4()))
        return web.Response(status=202, body=ACK, content_type="application/json")

    app = web.Application()
    app.cleanup_ctx.append(backends)
    app.router.add_post("/api/ingest/v1/association", handler)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--topology", default="bench-naive")
    args = parser.parse_args()
    if args.kind == "bare":
        app = web.Application()
        app.router.add_post("/api/ingest/v1/association", bare_handler)
    else:
        app = naive_app(args.amqp_url, args.topology)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
