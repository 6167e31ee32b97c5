// Outbound HTTP through the host (WIT `http`), to the hosts the tenant allows. The global
// `fetch` works too: it goes through wasi:http, under the same grant (docs/PLUGINS.md).

import * as w from "orquesta:plugin/http@0.1.2";
import { hostCall } from "./errors";
import { parseJson } from "./events";
import type { Fields } from "./responses";

export interface SendOptions {
  headers?: Fields;
  body?: string | Uint8Array;
  /** At most the host's limit; absent: the host's default. */
  timeoutMs?: number;
}

export class HttpResponse {
  constructor(
    public status: number,
    public headers: Fields,
    public body: Uint8Array,
  ) {}

  text(): string {
    return new TextDecoder().decode(this.body);
  }

  json(): unknown {
    return parseJson(this.text(), "the response body");
  }
}

/** Sends a request; any HTTP status is a successful call, a refused host a `HostError`. */
export function send(method: string, url: string, options: SendOptions = {}): HttpResponse {
  const body =
    typeof options.body === "string" ? new TextEncoder().encode(options.body) : (options.body ?? new Uint8Array());
  const r = hostCall(() =>
    w.send({ method, url, headers: options.headers ?? [], body, timeoutMs: options.timeoutMs }),
  );
  return new HttpResponse(r.status, r.headers, r.body);
}

export const get = (url: string, options?: SendOptions) => send("GET", url, options);

export function postJson(url: string, value: unknown, options: SendOptions = {}): HttpResponse {
  return send("POST", url, {
    ...options,
    headers: [["content-type", "application/json"], ...(options.headers ?? [])],
    body: JSON.stringify(value),
  });
}
