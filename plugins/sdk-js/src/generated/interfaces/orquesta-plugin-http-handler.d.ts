/// <reference path="./orquesta-plugin-events.d.ts" />
/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/http-handler@0.1.2' {
  /**
   * An `err` answers 500 with the failure (see docs/TENANTS.md).
   */
  export function handle(request: HttpRequest): Response;
  export type Failure = import('orquesta:plugin/types@0.1.2').Failure;
  export type HttpRequest = import('orquesta:plugin/events@0.1.2').HttpRequest;
  export type Response = import('orquesta:plugin/events@0.1.2').Response;
}
