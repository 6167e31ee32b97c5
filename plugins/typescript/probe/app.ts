// A TypeScript plugin the tests drive (tests/e2e/javascript.rs): JavaScript's `fetch`
// through the tenant's `hosts` grant, the SDK's failures, and what a hostile plugin can
// do with the engine (a loop, unbounded allocation).

import { Failure, kv, onHttp, Request, Response } from "orquesta";

// What a warm instance (`[plugins.NAME.warm]`) carries between invocations.
const remembered: { uses: number; value: string | null } = { uses: 0, value: null };

onHttp(async (req: Request) => {
  switch (req.path) {
    case "/fetch": {
      // The body names the URL; the answer says what `fetch` gave.
      const url = req.text();
      try {
        const answer = await fetch(url, { headers: { "x-probe": "ts" } });
        return { status: answer.status, body: await answer.text(), answer: answer.headers.get("x-answer") };
      } catch (e) {
        return Response.json({ refused: String(e) }, 502);
      }
    }
    case "/remember": {
      remembered.uses += 1;
      const previous = remembered.value;
      const body = req.text();
      if (body) remembered.value = body;
      return { uses: remembered.uses, previous };
    }
    case "/denied":
      // A bucket the tenant did not grant: the HostError becomes the failure `Denied`.
      return { count: kv.increment("not-granted", "n") };
    case "/fail":
      throw new Failure("ValidationError", "the probe fails on purpose");
    case "/throw":
      return (undefined as unknown as { x: number }).x;
    case "/spin":
      for (;;) {
        // Cut by the host's timeout (epoch interruption), not by anything here.
      }
    case "/allocate": {
      const kept: Uint8Array[] = [];
      for (;;) kept.push(new Uint8Array(1 << 20).fill(1));
    }
    default:
      return { ok: true, path: req.path };
  }
});
