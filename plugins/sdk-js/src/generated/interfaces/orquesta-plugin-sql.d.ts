/// <reference path="./orquesta-plugin-types.d.ts" />
declare module 'orquesta:plugin/sql@0.1.2' {
  /**
   * Run a statement that returns rows.
   */
  export function query(database: string, statement: string, params: Array<Value>): Rows;
  /**
   * Run a statement that changes data. Returns the number of rows affected.
   */
  export function execute(database: string, statement: string, params: Array<Value>): bigint;
  export type HostError = import('orquesta:plugin/types@0.1.2').HostError;
  /**
   * A typed SQL value.
   */
  export type Value = ValueNull | ValueBoolean | ValueInteger | ValueReal | ValueText | ValueBlob;
  export interface ValueNull {
    tag: 'null',
  }
  export interface ValueBoolean {
    tag: 'boolean',
    val: boolean,
  }
  export interface ValueInteger {
    tag: 'integer',
    val: bigint,
  }
  export interface ValueReal {
    tag: 'real',
    val: number,
  }
  export interface ValueText {
    tag: 'text',
    val: string,
  }
  export interface ValueBlob {
    tag: 'blob',
    val: Uint8Array,
  }
  /**
   * The rows a query returned, each in `columns` order.
   */
  export interface Rows {
    columns: Array<string>,
    rows: Array<Array<Value>>,
  }
}
