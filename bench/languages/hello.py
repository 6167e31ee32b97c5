"""The `bench` plugin's HTTP greeting in Python (docs/BENCHMARKS.md, "Languages"): the
same bytes as plugins/bench and bench/wasi-hello, so what differs is the language."""

import orquesta


@orquesta.on_http
def hello(req: orquesta.Request) -> orquesta.Response:
    name = req.query.get("name", "world")
    body = '{"message":"Hello, ' + name + '!"}'
    return orquesta.Response(200, body.encode(), [("content-type", "application/json")])
