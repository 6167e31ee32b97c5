/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/notify@0.1.2' {
  /**
   * Publish `body` to `topic`. Returns the message id.
   */
  export function publish(topic: string, subject: string | undefined, body: string, attributes: Fields): string;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
}
