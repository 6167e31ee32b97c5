"""A hostile Python plugin (the Python twin of plugins/hostile): what a tenant could do
with the interpreter to the host. tests/e2e/python.rs checks each is contained.

- `/spin`: a Python loop that never ends; the invocation's timeout must cut it.
- `/allocate`: keeps every block it allocates, past any memory limit; the allocation
  past `memory_mb` must fail the invocation, not the host.
- `/recurse`: recursion until Python's own limit, then far deeper through the C stack.
- `/remember`: counts its invocations and keeps the body in a module global, answering
  what it held before: what a warm instance (`[plugins.NAME.warm]`) carries between
  invocations, as a warm Lambda environment does.
- anything else: a small answer, to show the plugin still works afterwards.
"""

import sys

import orquesta

remembered = {"uses": 0, "value": None}


@orquesta.on_http
def handle(req: orquesta.Request) -> orquesta.Response:
    if req.path == "/remember":
        remembered["uses"] += 1
        previous = remembered["value"]
        if req.body:
            remembered["value"] = req.text()
        return orquesta.Response.json({"uses": remembered["uses"], "previous": previous})
    if req.path == "/spin":
        n = 0
        while True:
            n += 1
    if req.path == "/allocate":
        kept = []
        while True:
            kept.append(bytearray(1 << 20))
    if req.path == "/recurse":
        sys.setrecursionlimit(1_000_000)

        def down(n):
            return down(n + 1) + 1

        return orquesta.Response.json({"depth": down(0)})
    return orquesta.Response.json({"ok": True, "path": req.path})
