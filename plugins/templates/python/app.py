"""A Python plugin for orquesta: copy this folder, then (docs/PLUGINS.md)

    orquesta build app.py -o hello.wasm
    orquesta test hello.wasm fixtures.toml

`GET /hello?name=Ana` greets and counts the caller's visits in kv; `POST /hello` with
`{"name": "Ana"}` does the same from a JSON body.
"""

import orquesta
from orquesta import config, kv, log


@orquesta.on_http
def hello(req: orquesta.Request) -> orquesta.Response:
    if req.method == "POST":
        body = req.json()  # bad JSON: the failure `InvalidJson`, a 500 with its cause
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            return orquesta.Response.json(
                {"error": "ValidationError", "message": "name must be a non-empty string"}, 400
            )
    else:
        name = req.query.get("name", "world")
    visits = kv.increment("default", f"visits/{name}", 1)
    log.info("greeted", name=name, visits=visits)
    greeting = config.get("greeting", "Hello")
    return orquesta.Response.json({"message": f"{greeting}, {name}!", "visits": visits})
