/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/config@0.1.2' {
  /**
   * A config value, or `none` when the tenant did not set it.
   */
  export function get(key: string): string | undefined;
  /**
   * Every config value (secrets excluded).
   */
  export function getAll(): Fields;
  /**
   * A secret the tenant granted this plugin. Secrets are never logged by the host.
   */
  export function secret(name: string): string | undefined;
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
}
