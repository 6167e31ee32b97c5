// Objects by bucket and key, scoped to the tenant (WIT `blob`): the buckets the tenant
// grants the plugin (`allow.blob_buckets`). Strings are stored as UTF-8 and the `*Json`
// helpers store JSON text, as in `kv`.

import * as w from "orquesta:plugin/blob@0.1.2";
import { hostCall } from "./errors";
import { parseJson } from "./events";

/** One page of keys, in key order, and the cursor of the next (`undefined` at the end). */
export type ObjectPage = w.ObjectPage;

const bytes = (data: string | Uint8Array): Uint8Array =>
  typeof data === "string" ? new TextEncoder().encode(data) : data;

/** The object's bytes, or `undefined` when absent. */
export function get(bucket: string, key: string): Uint8Array | undefined {
  return hostCall(() => w.get(bucket, key));
}

/** The object as text, or `undefined`. */
export function getText(bucket: string, key: string): string | undefined {
  const data = get(bucket, key);
  return data && new TextDecoder().decode(data);
}

/** The object parsed as JSON, or `undefined`; an object that is not JSON is the failure
 * `InvalidJson`. */
export function getJson(bucket: string, key: string): unknown {
  const text = getText(bucket, key);
  return text === undefined ? undefined : parseJson(text, `blob ${bucket}/${key}`);
}

/** Creates or replaces an object. */
export function put(bucket: string, key: string, data: string | Uint8Array): void {
  hostCall(() => w.put(bucket, key, bytes(data)));
}

export function putJson(bucket: string, key: string, value: unknown): void {
  put(bucket, key, JSON.stringify(value));
}

/** Removes an object; whether it existed. */
export function remove(bucket: string, key: string): boolean {
  return hostCall(() => w.delete(bucket, key));
}

/** One page of the keys starting with `prefix` (`limit` is capped by the host). */
export function listKeys(bucket: string, prefix = "", cursor?: string, limit = 1000): ObjectPage {
  return hostCall(() => w.listKeys(bucket, prefix, cursor, limit));
}
