/**
 * `@toss-etl/sdk`: write a transform plugin for the Toss ETL engine in TypeScript or JavaScript.
 *
 * A plugin implements {@link Transform} (`init(config)`, `transform(batch)`), and its entry
 * module exports the component's functions with `definePlugin`:
 *
 * ```ts
 * export const { init, transform } = definePlugin(() => new MyPlugin());
 * ```
 *
 * `toss-etl-plugin build` (the package's command, run by `npm run build`) type-checks, bundles
 * and componentizes it into a `.wasm` component the engine loads; `@toss-etl/sdk/testing` runs
 * it under Node as the engine does. The contract is `wit/transform.wit` in the engine's
 * repository; `arrow` is apache-arrow, re-exported so a plugin needs no second copy.
 */
export * as arrow from "apache-arrow";
export { Field, RecordBatch, Schema } from "apache-arrow";
export * as columns from "./columns.ts";
export { Config, type Json } from "./config.ts";
export { type ErrorKind, PluginError, toPluginError } from "./errors.ts";
export * as ipc from "./ipc.ts";
export { ComponentError, type PluginExports, type Transform, type WitPluginError, definePlugin } from "./plugin.ts";
export * as toss from "./toss.ts";
export * as tossApi from "./tossApi.ts";
