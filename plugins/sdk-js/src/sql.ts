// SQL against the databases the tenant names (WIT `sql`). Parameters are always bound,
// never interpolated.

import * as w from "orquesta:plugin/sql@0.1.2";
import { hostCall } from "./errors";

/** The contract's typed value. */
type WitValue = w.Value;

export type SqlValue = null | boolean | number | bigint | string | Uint8Array;

function toWit(value: SqlValue | undefined): WitValue {
  if (value === null || value === undefined) return { tag: "null" };
  if (typeof value === "boolean") return { tag: "boolean", val: value };
  if (typeof value === "bigint") return { tag: "integer", val: value };
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? { tag: "integer", val: BigInt(value) } : { tag: "real", val: value };
  }
  if (typeof value === "string") return { tag: "text", val: value };
  return { tag: "blob", val: value };
}

// Integers come back as numbers when they fit, as bigints when they do not.
function fromWit(value: WitValue): SqlValue {
  switch (value.tag) {
    case "null":
      return null;
    case "integer":
      return value.val >= BigInt(Number.MIN_SAFE_INTEGER) && value.val <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value.val)
        : value.val;
    default:
      return value.val;
  }
}

/** Runs a statement that returns rows; each row an object by column name. */
export function query(database: string, statement: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
  const result = hostCall(() => w.query(database, statement, params.map(toWit)));
  return result.rows.map((row) => Object.fromEntries(row.map((v, i) => [result.columns[i], fromWit(v)])));
}

/** Runs a statement that changes data; the number of rows affected. */
export function execute(database: string, statement: string, params: SqlValue[] = []): number {
  return Number(hostCall(() => w.execute(database, statement, params.map(toWit))));
}
