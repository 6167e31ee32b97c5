/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/kv@0.1.2' {
  /**
   * The value and version of `key`, or `none` when absent or expired.
   */
  export function get(bucket: string, key: string): Entry | undefined;
  /**
   * Store `value` under `key`; with `ttl-ms` it expires that many milliseconds from
   * now. Returns the new version.
   */
  export function set(bucket: string, key: string, value: Uint8Array, ttlMs: bigint | undefined): bigint;
  /**
   * Remove `key`. Returns whether it existed.
   */
  export { _delete as delete };
  function _delete(bucket: string, key: string): boolean;
  /**
   * Keys starting with `prefix`, at most `limit` (capped by the host) per page.
   */
  export function listKeys(bucket: string, prefix: string, cursor: string | undefined, limit: number): KeyPage;
  /**
   * Write `value` only if the key's current version is `expected` (0: only if absent).
   * Returns the new version, or `none` when the version did not match.
   */
  export function compareAndSwap(bucket: string, key: string, expected: bigint, value: Uint8Array, ttlMs: bigint | undefined): bigint | undefined;
  /**
   * Atomically add `delta` to the integer stored as decimal text under `key` (absent
   * counts as 0). Returns the new value.
   */
  export function increment(bucket: string, key: string, delta: bigint): bigint;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  /**
   * A stored value with its version. Versions start at 1 and grow by one per write.
   */
  export interface Entry {
    key: string,
    value: Uint8Array,
    version: bigint,
  }
  /**
   * One page of a key listing, in key order. Pass `cursor` back to get the next page;
   * `none` means the listing is complete.
   */
  export interface KeyPage {
    keys: Array<string>,
    cursor?: string,
  }
}
