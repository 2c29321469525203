// Cargo's runner for wasm32-wasip1 (CARGO_TARGET_WASM32_WASIP1_RUNNER): runs a WASI
// preview 1 module under Node's built-in `node:wasi` (Node 20 has it; no other runtime to
// install), with the host's environment and the file system preopened at `/`, and exits
// with the module's exit code. Usage: node --no-warnings .ci/wasi-run.mjs module.wasm [args]
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [wasm, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: [wasm, ...args],
  env: process.env,
  preopens: { "/": "/" },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasm));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
