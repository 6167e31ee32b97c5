/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/http@0.1.2' {
  /**
   * Send `request`; any HTTP status is a successful call. Refused (`denied`) for hosts
   * outside the allow-list and for private, loopback and link-local addresses.
   */
  export function send(request: Request): Response;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
  export interface Request {
    method: string,
    url: string,
    headers: Fields,
    body: Uint8Array,
    /**
     * At most the host's limit; `none` uses the host's default.
     */
    timeoutMs?: number,
  }
  export interface Response {
    status: number,
    headers: Fields,
    body: Uint8Array,
  }
}
