// Key-value storage scoped to the tenant and plugin (WIT `kv`). Values are bytes; string
// values are stored as UTF-8 and the `*Json` helpers store JSON text.

import * as w from "orquesta:plugin/kv@0.1.2";
import { hostCall } from "./errors";
import { parseJson } from "./events";

/** A stored value with its version (versions start at 1, one more per write). */
export type Entry = w.Entry;

const bytes = (value: string | Uint8Array): Uint8Array =>
  typeof value === "string" ? new TextEncoder().encode(value) : value;
const ttl = (ttlMs?: number): bigint | undefined =>
  ttlMs === undefined ? undefined : BigInt(ttlMs);

/** The entry (value and version), or `undefined` when absent or expired. */
export function get(bucket: string, key: string): Entry | undefined {
  return hostCall(() => w.get(bucket, key));
}

/** The value as text, or `undefined`. */
export function getText(bucket: string, key: string): string | undefined {
  const entry = get(bucket, key);
  return entry && new TextDecoder().decode(entry.value);
}

/** The value parsed as JSON, or `undefined`; a value that is not JSON is the failure
 * `InvalidJson`. */
export function getJson(bucket: string, key: string): unknown {
  const text = getText(bucket, key);
  return text === undefined ? undefined : parseJson(text, `kv ${bucket}/${key}`);
}

/** Stores `value`; returns the new version. */
export function set(bucket: string, key: string, value: string | Uint8Array, ttlMs?: number): bigint {
  return hostCall(() => w.set(bucket, key, bytes(value), ttl(ttlMs)));
}

export function setJson(bucket: string, key: string, value: unknown, ttlMs?: number): bigint {
  return set(bucket, key, JSON.stringify(value), ttlMs);
}

/** Removes `key`; whether it existed. */
export function remove(bucket: string, key: string): boolean {
  return hostCall(() => w.delete(bucket, key));
}

/** One page of keys and the cursor of the next (`undefined` at the end). */
export function listKeys(
  bucket: string,
  prefix = "",
  cursor?: string,
  limit = 1000,
): { keys: string[]; cursor?: string } {
  return hostCall(() => w.listKeys(bucket, prefix, cursor, limit));
}

/** Writes only if the version is `expected` (0: absent); the new version, or `undefined`. */
export function compareAndSwap(
  bucket: string,
  key: string,
  expected: bigint | number,
  value: string | Uint8Array,
  ttlMs?: number,
): bigint | undefined {
  return hostCall(() => w.compareAndSwap(bucket, key, BigInt(expected), bytes(value), ttl(ttlMs)));
}

/** Adds `delta` to the integer under `key` (absent counts as 0); the new value. */
export function increment(bucket: string, key: string, delta: number = 1): number {
  return Number(hostCall(() => w.increment(bucket, key, BigInt(delta))));
}
