// Generates the TypeScript declarations of the contract's bindings with the pinned jco
// (plugins/sdk-js/src/generated/; docs/PLUGINS.md, "TypeScript plugins").
//
//     node wit-types.mjs TOOLS WIT WORLD OUT
//
// TOOLS is the folder the pinned tools are installed in (`npm ci --prefix TOOLS`), WIT one
// file holding the package and WORLD, OUT the folder the files are written to. The tests
// run it (tests/e2e/javascript.rs) with the world `orquesta build` writes.
//
// It calls jco's type generator with the WIT as text rather than `jco guest-types PATH`:
// jco 1.35.0 reads a path through WASI, and its preview2-shim (0.26) gives the generator
// no preopened directory, so every path fails with "failed to read path for WIT ... No
// such file or directory (os error 44)".

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [tools, wit, world, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node wit-types.mjs TOOLS WIT WORLD OUT");
  process.exit(2);
}
// Resolved as jco itself resolves it, wherever npm placed it.
const jco = createRequire(resolve(tools, "node_modules/@bytecodealliance/jco/package.json"));
const bindgen = await import(pathToFileURL(jco.resolve("@bytecodealliance/jco-transpile/component")).href);
await bindgen.$init;
const files = bindgen.generateTypes(world, {
  wit: { tag: "source", val: readFileSync(wit, "utf8") },
  world,
  guest: true,
  features: { tag: "list", val: [] },
  tlaCompat: false,
});
for (const [name, data] of files) {
  const path = join(out, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  console.log(path);
}
