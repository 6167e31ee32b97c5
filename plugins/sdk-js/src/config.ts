// The plugin's configuration from its tenant's file, and its secrets (WIT `config`).

import * as w from "orquesta:plugin/config@0.1.2";

/** A config value, or `fallback` when the tenant did not set it. */
export function get(key: string): string | undefined;
export function get(key: string, fallback: string): string;
export function get(key: string, fallback?: string): string | undefined {
  return w.get(key) ?? fallback;
}

/** Every config value (secrets excluded). */
export function all(): Record<string, string> {
  return Object.fromEntries(w.getAll());
}

/** A secret the tenant granted this plugin, or `undefined`. */
export function secret(name: string): string | undefined {
  return w.secret(name);
}
