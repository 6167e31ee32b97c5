// What a handler returns: `Response` for HTTP, any JSON value for the other triggers,
// `Batch` for a queue batch with failed messages, `undefined` for nothing to report.

export type Fields = Array<[string, string]>;

const encoder = new TextEncoder();

/** An HTTP answer. */
export class Response {
  constructor(
    public status: number = 200,
    public body: Uint8Array = new Uint8Array(),
    public headers: Fields = [],
  ) {}

  /** `value` as compact JSON, with `content-type: application/json`. */
  static json(value: unknown, status = 200, headers: Fields = []): Response {
    return new Response(status, encoder.encode(JSON.stringify(value) ?? "null"), [
      ["content-type", "application/json"],
      ...headers,
    ]);
  }

  static text(text: string, status = 200, headers: Fields = []): Response {
    return new Response(status, encoder.encode(text), [
      ["content-type", "text/plain; charset=utf-8"],
      ...headers,
    ]);
  }
}

/** For a queue batch: the ids of the messages that failed and must come back. */
export class Batch {
  constructor(public failed: string[] = []) {}
}
