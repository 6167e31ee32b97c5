// The `bench` plugin's HTTP greeting in TypeScript (docs/BENCHMARKS.md, "Languages"): the
// same bytes as plugins/bench and bench/wasi-hello, so what differs is the language.

import { onHttp, Request, Response } from "orquesta";

const encoder = new TextEncoder();

onHttp((req: Request) => {
  const name = req.query.name ?? "world";
  const body = `{"message":"Hello, ${name}!"}`;
  return new Response(200, encoder.encode(body), [["content-type", "application/json"]]);
});
