// A TypeScript plugin the tests drive (tests/e2e/javascript.rs): JavaScript's `fetch`
// through the tenant's `hosts` grant, the SDK's failures, blobs and workflow task
// answers under the tenant's grants, and what a hostile plugin can do with the engine (a
// loop, unbounded allocation).

import { blob, Failure, kv, onHttp, Request, Response, TaskError, tasks } from "orquesta";

/** What `/blob` does: each step on `bucket`, in order; the answers by step. */
function blobSteps(bucket: string, key: string, text: string): Record<string, unknown> {
  blob.put(bucket, key, text);
  blob.putJson(bucket, `${key}.json`, { text });
  const listed = blob.listKeys(bucket, key);
  const first = blob.listKeys(bucket, key, undefined, 1);
  return {
    text: blob.getText(bucket, key),
    json: blob.getJson(bucket, `${key}.json`),
    bytes: Array.from(blob.get(bucket, key) ?? []).length,
    keys: listed.keys,
    firstPage: first.keys,
    more: first.cursor !== undefined,
    removed: blob.remove(bucket, key),
    removedAgain: blob.remove(bucket, key),
    after: blob.get(bucket, key) === undefined ? null : "still there",
  };
}

/** What `/task` does: one answer to the token in the body (`{ answer, token, ... }`);
 * a refusal is answered as its name, not thrown, so the test reads each. */
function answerTask(body: { answer: string; token?: string; input?: unknown; output?: unknown; error?: string; cause?: string }) {
  const token = body.token ?? tasks.tokenIn(body.input, "token") ?? "";
  try {
    if (body.answer === "success") tasks.succeed(token, body.output);
    else if (body.answer === "failure") tasks.fail(token, body.error ?? "", body.cause ?? "");
    else tasks.heartbeat(token);
    return { ok: true };
  } catch (e) {
    if (e instanceof TaskError) return { error: e.error, kind: e.kind, cause: e.cause };
    throw e;
  }
}

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
    case "/blob":
      return blobSteps(req.query.bucket ?? "files", req.query.key ?? "k", req.text());
    case "/blob/read":
      // Reads another bucket's object: refused (`Denied`) unless the tenant grants it.
      return { text: blob.getText(req.query.bucket ?? "", req.query.key ?? "") ?? null };
    case "/task":
      return answerTask(req.json() as Parameters<typeof answerTask>[0]);
    case "/task/uncaught":
      // An uncaught refusal is the handler's failure, named as the cloud names it.
      tasks.succeed(req.text(), { late: true });
      return { ok: true };
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
