/**
 * The glue between a plugin written against {@link Transform} and the WIT world
 * `toss-etl:transform@1.0.0` as componentize-js exposes it: two exported functions, `init(config:
 * string)` and `transform(batch: Uint8Array): Uint8Array`, whose `result` errors are thrown
 * values carrying a `payload` of the WIT variant (`{ tag: "config" | "data" | "other", val }`).
 *
 * The glue catches everything a plugin throws. Left uncaught, a JS exception makes the
 * component abort, and the engine then only sees a trap and a stack line; caught here, it
 * reaches the engine as a `plugin-error` in words.
 */
import type { RecordBatch } from "apache-arrow";
import { Config } from "./config.ts";
import { type ErrorKind, PluginError, toPluginError } from "./errors.ts";
import { decode, encode } from "./ipc.ts";

/** A plugin: the TypeScript side of the contract, as `toss_etl_sdk::Transform` is the Rust one. */
export interface Transform {
  /**
   * Called once per instance, before any batch, with the pipeline's `[transforms.config]`.
   * Check everything here and throw `PluginError.config("key: …")` for what is wrong, so
   * `engine validate` reports it before any data moves.
   */
  init(config: Config): void;
  /**
   * Called for every batch, in order; the first has no rows (the engine learns the output
   * schema from it). Return the batch the next stage gets; keep every column you do not mean to
   * change, and always the same schema.
   */
  transform(batch: RecordBatch): RecordBatch;
}

/** The WIT variant `plugin-error` as componentize-js represents it. */
export interface WitPluginError {
  tag: ErrorKind;
  val: string;
}

/** What a WIT `result` export throws for `err`: componentize-js reads its `payload`. */
export class ComponentError extends Error {
  readonly payload: WitPluginError;
  constructor(payload: WitPluginError) {
    super(payload.val);
    this.name = "ComponentError";
    this.payload = payload;
  }
}

/** The functions the component exports: the WIT world's `init` and `transform`. */
export interface PluginExports {
  init(config: string): void;
  transform(batch: Uint8Array): Uint8Array;
}

/**
 * The component's exports for the plugin `make` returns. In the plugin's entry module:
 *
 * ```ts
 * export const { init, transform } = definePlugin(() => new MyPlugin());
 * ```
 *
 * `init` makes a fresh plugin with `make` and calls its `init`; `transform` decodes the batch,
 * calls the plugin's `transform` and encodes its answer. Whatever is thrown becomes the WIT
 * error: a `PluginError` of its kind, anything else an `other` error with its message.
 */
export function definePlugin(make: () => Transform): PluginExports {
  let plugin: Transform | undefined;
  return {
    init(config: string): void {
      guarded(() => {
        plugin = undefined;
        const made = make();
        made.init(Config.fromJson(config));
        plugin = made;
      });
    },
    transform(batch: Uint8Array): Uint8Array {
      return guarded(() => {
        if (plugin === undefined) {
          throw PluginError.other("transform was called before a successful init");
        }
        return encode(plugin.transform(decode(batch)));
      });
    },
  };
}

function guarded<T>(call: () => T): T {
  try {
    return call();
  } catch (thrown) {
    const error = toPluginError(thrown);
    throw new ComponentError({ tag: error.kind, val: error.message });
  }
}
