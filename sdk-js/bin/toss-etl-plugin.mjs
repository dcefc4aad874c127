#!/usr/bin/env node
// toss-etl-plugin: the one command that turns a TypeScript (or JavaScript) plugin into the
// WebAssembly component the engine loads, and runs its tests under Node.
//
//   toss-etl-plugin build [--entry src/index.ts] [--out dist/NAME.wasm] [--wit DIR] [--no-check]
//   toss-etl-plugin test  [--no-check] [files...]
//
// build: type-checks with tsc (when the project has a tsconfig.json), bundles the entry and
// everything it imports (the SDK, apache-arrow) into one ES module with esbuild, and
// componentizes that with componentize-js against the engine's WIT world `transform`, with the
// `http` and `fetch-event` features disabled: those import wasi:http, which the engine's
// sandbox refuses to link. The result is written to --out (default dist/<package name>.wasm).
//
// test: type-checks, bundles each test/**/*.test.{ts,js} for Node and runs them with
// `node --test`, so the plugin's transform runs with the same glue and IPC as in the engine.
//
// Why one command: a plugin author should not have to know which bundler options and which
// componentize features the engine needs; this is the single place that knows them.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(sdkDir, "package.json"));

function fail(message) {
  console.error(`toss-etl-plugin: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) fail(`${arg} needs a value`);
      return next;
    };
    if (arg === "--entry") options.entry = value();
    else if (arg === "--out") options.out = value();
    else if (arg === "--wit") options.wit = value();
    else if (arg === "--no-check") options.noCheck = true;
    else if (arg.startsWith("--")) fail(`unknown option ${arg}; see the comment at the top of ${fileURLToPath(import.meta.url)}`);
    else options.files.push(arg);
  }
  return options;
}

function readPackage(dir) {
  const path = join(dir, "package.json");
  if (!existsSync(path)) fail(`no package.json in ${dir}: run this in the plugin's folder`);
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Type-checks the project with its own tsconfig.json (none: nothing to check, e.g. plain JS). */
function typeCheck(dir) {
  if (!existsSync(join(dir, "tsconfig.json"))) return;
  const tsc = require.resolve("typescript/bin/tsc");
  const started = Date.now();
  const run = spawnSync(process.execPath, [tsc, "--noEmit", "-p", join(dir, "tsconfig.json")], { stdio: "inherit" });
  if (run.status !== 0) fail("type errors (above); fix them, or pass --no-check to build anyway");
  console.error(`  type-checked in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function bundle(entryPoints, outdir, platform) {
  const esbuild = await import("esbuild");
  await esbuild.build({
    entryPoints,
    outdir,
    bundle: true,
    format: "esm",
    platform,
    // StarlingMonkey (SpiderMonkey) runs ES2022; Node 20 does too.
    target: "es2022",
    mainFields: ["module", "main"],
    // Packages resolve from where each file really is: a plugin linked to the SDK (`file:`)
    // gets apache-arrow from the SDK's installation, the one copy the SDK's helpers use (two
    // copies would break instanceof). Plugins import Arrow as the SDK's `arrow` re-export.
    logLevel: "warning",
    legalComments: "none",
  });
}

function findWit(given) {
  const candidates = given ? [resolve(given)] : [join(sdkDir, "..", "wit"), join(sdkDir, "wit")];
  for (const dir of candidates) {
    if (existsSync(join(dir, "transform.wit"))) return dir;
  }
  fail(
    `cannot find the engine's WIT contract (transform.wit) in ${candidates.join(" or ")}; ` +
      "pass --wit <the wit folder of the engine's repository>",
  );
}

async function build(options) {
  const dir = process.cwd();
  const pkg = readPackage(dir);
  const entry = resolve(options.entry ?? ["src/index.ts", "src/index.js"].find((e) => existsSync(join(dir, e))) ?? "src/index.ts");
  if (!existsSync(entry)) fail(`the entry ${relative(dir, entry)} does not exist; pass --entry <file>`);
  const name = (pkg.name ?? basename(dir)).replace(/^@[^/]+\//, "");
  const out = resolve(options.out ?? join("dist", `${name}.wasm`));
  const wit = findWit(options.wit);
  console.error(`building ${name}: ${relative(dir, entry)} → ${relative(dir, out) || out}`);
  if (!options.noCheck) typeCheck(dir);

  const work = mkdtempSync(join(tmpdir(), "toss-etl-plugin-"));
  try {
    let started = Date.now();
    await bundle([entry], work, "neutral");
    const bundled = join(work, basename(entry).replace(/\.[cm]?[jt]s$/, ".js"));
    console.error(`  bundled in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    started = Date.now();
    const { componentize } = await import("@bytecodealliance/componentize-js");
    const { component } = await componentize({
      sourcePath: bundled,
      witPath: wit,
      worldName: "transform",
      // http and fetch-event import wasi:http; the engine links no such thing.
      disableFeatures: ["http", "fetch-event"],
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, component);
    const mb = (component.length / 1024 / 1024).toFixed(1);
    console.error(`  componentized in ${((Date.now() - started) / 1000).toFixed(1)} s: ${out} (${mb} MiB)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function testFiles(dir) {
  const found = [];
  const walk = (folder) => {
    if (!existsSync(folder)) return;
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.test\.[cm]?[jt]s$/.test(entry)) found.push(path);
    }
  };
  walk(join(dir, "test"));
  return found.sort();
}

async function test(options) {
  const dir = process.cwd();
  const files = options.files.length > 0 ? options.files.map((f) => resolve(f)) : testFiles(dir);
  if (files.length === 0) fail(`no tests: put files named *.test.ts under ${join(dir, "test")}`);
  if (!options.noCheck) typeCheck(dir);
  const work = mkdtempSync(join(tmpdir(), "toss-etl-plugin-test-"));
  try {
    await bundle(files, work, "node");
    const bundled = files.map((f) => join(work, basename(f).replace(/\.[cm]?[jt]s$/, ".js")));
    // .js files in a folder without package.json would be CommonJS to Node: mark them ESM.
    writeFileSync(join(work, "package.json"), '{"type": "module"}\n');
    const run = spawnSync(process.execPath, ["--test", ...bundled], { stdio: "inherit", cwd: dir });
    process.exitCode = run.status ?? 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const [command, ...rest] = process.argv.slice(2);
const options = parseArgs(rest);
if (command === "build") await build(options);
else if (command === "test") await test(options);
else fail("usage: toss-etl-plugin build [--entry FILE] [--out FILE] [--wit DIR] [--no-check] | test [--no-check] [FILES...]");
