// A TypeScript plugin for orquesta: copy this folder, then (docs/PLUGINS.md)
//
//     orquesta build app.ts -o hello.wasm
//     orquesta test hello.wasm fixtures.toml
//
// `GET /hello?name=Ana` greets and counts the caller's visits in kv; `POST /hello` with
// `{"name": "Ana"}` does the same from a JSON body.

import { config, kv, log, onHttp, Request, Response } from "orquesta";

onHttp((req: Request) => {
  let name: unknown;
  if (req.method === "POST") {
    const body = req.json(); // bad JSON: the failure `InvalidJson`, a 500 with its cause
    name = typeof body === "object" && body !== null ? (body as { name?: unknown }).name : undefined;
    if (typeof name !== "string" || !name) {
      return Response.json({ error: "ValidationError", message: "name must be a non-empty string" }, 400);
    }
  } else {
    name = req.query.name ?? "world";
  }
  const visits = kv.increment("default", `visits/${name}`, 1);
  log.info("greeted", { name, visits });
  const greeting = config.get("greeting", "Hello");
  return Response.json({ message: `${greeting}, ${name}!`, visits });
});
