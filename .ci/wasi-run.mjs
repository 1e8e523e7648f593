// Runs a wasm32-wasip1 program under Node.js's WASI (preview 1), for
// CARGO_TARGET_WASM32_WASIP1_RUNNER:
// `node --no-turbo-fast-api-calls .ci/wasi-run.mjs PROGRAM.wasm ARGS...` (Node 20 or newer;
// the flag avoids a crash in V8's fast calls into node:wasi, see .ci/steps/75-wasm.sh).
//
// The working directory (cargo runs tests from the package root) is preopened at its own
// absolute path, so `env!("CARGO_MANIFEST_DIR")` paths (tests/data/*.safetensors) open as
// they do natively, and at `/`, the program's working directory under WASI, so relative
// paths open too (proptest finds tests/*.rs and replays tests/*.proptest-regressions);
// nothing else of the file system is visible. The environment is passed
// through (PROPTEST_CASES, RUST_BACKTRACE). The exit code is the program's: a panic aborts
// the module (wasm has no unwinding), which Node reports as an uncaught RuntimeError
// `unreachable` and exit code 1, so a failing test fails the run.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { WASI } from 'node:wasi';

const [program, ...args] = process.argv.slice(2);
if (!program) {
  console.error('usage: node wasi-run.mjs PROGRAM.wasm [ARGS...]');
  process.exit(2);
}
const cwd = process.cwd();
const wasi = new WASI({
  version: 'preview1',
  args: [program, ...args],
  env: process.env,
  preopens: { '/': cwd, [cwd]: cwd },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
