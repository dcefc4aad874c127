/// <reference types="node" />
/**
 * Runs a plugin under Node exactly as the engine calls it: JSON config text into `init`, Arrow
 * IPC bytes into `transform` and back, through the same glue the component uses, so a
 * `node --test` run (`npm test`) checks what the engine will see: the WIT errors with their
 * kinds, the zero-row probe first, and one output schema for every batch. The counterpart of the
 * Rust SDK's `Instance`.
 */
import type { RecordBatch, Schema } from "apache-arrow";
import { PluginError } from "./errors.ts";
import { decode, emptyBatch, encode } from "./ipc.ts";
import { ComponentError, type PluginExports, type Transform, definePlugin } from "./plugin.ts";

export class Instance {
  private readonly exports: PluginExports;
  private announced: Schema | undefined;

  /** An instance of the plugin `make` returns (not yet initialised). */
  constructor(make: () => Transform) {
    this.exports = definePlugin(make);
  }

  /** The WIT `init` with `config` (an object, or JSON text). Throws the `PluginError` the engine would get. */
  init(config: object | string = {}): void {
    const text = typeof config === "string" ? config : JSON.stringify(config);
    unwrap(() => this.exports.init(text));
  }

  /** The WIT `transform` on IPC bytes. Throws the `PluginError` the engine would get. */
  transformIpc(bytes: Uint8Array): Uint8Array {
    return unwrap(() => this.exports.transform(bytes));
  }

  /**
   * What the engine does with one batch: on the first batch of an input schema, the zero-row
   * probe that announces the output schema; then the batch as IPC, the answer decoded, and
   * checked to have the announced schema.
   */
  transform(batch: RecordBatch): RecordBatch {
    if (this.announced === undefined) {
      this.announced = this.outputSchema(batch.schema);
    }
    const output = decode(this.transformIpc(encode(batch)));
    const expected = describeFields(this.announced);
    const got = describeFields(output.schema);
    if (expected !== got) {
      throw PluginError.other(
        `returned a batch whose schema differs from the one it announced; expected ${expected}, got ${got}`,
      );
    }
    return output;
  }

  /** The output schema the plugin announces for `input` (its answer to the zero-row probe). */
  outputSchema(input: Schema): Schema {
    return decode(this.transformIpc(encode(emptyBatch(input)))).schema;
  }
}

/** `[name: type (nullable), …]`: what the engine compares between the probe and each batch. */
export function describeFields(schema: Schema): string {
  return `[${schema.fields.map((f) => `${f.name}: ${f.type}${f.nullable ? "?" : ""}`).join(", ")}]`;
}

function unwrap<T>(call: () => T): T {
  try {
    return call();
  } catch (thrown) {
    if (thrown instanceof ComponentError) {
      throw new PluginError(thrown.payload.tag, thrown.payload.val);
    }
    throw thrown;
  }
}
