/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/blob@0.1.2' {
  /**
   * The object's bytes, or `none` when absent.
   */
  export function get(bucket: string, key: string): Uint8Array | undefined;
  /**
   * Create or replace an object.
   */
  export function put(bucket: string, key: string, data: Uint8Array): void;
  /**
   * Remove an object. Returns whether it existed.
   */
  export { _delete as delete };
  function _delete(bucket: string, key: string): boolean;
  /**
   * Keys starting with `prefix`, in key order, a page at a time.
   */
  export function listKeys(bucket: string, prefix: string, cursor: string | undefined, limit: number): ObjectPage;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  export interface ObjectPage {
    keys: Array<string>,
    cursor?: string,
  }
}
