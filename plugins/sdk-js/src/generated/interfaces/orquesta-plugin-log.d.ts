/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/log@0.1.2' {
  export function log(level: Level, message: string, fields: Fields): void;
  export type Fields = import('orquesta:plugin/types@0.1.2').Fields;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
