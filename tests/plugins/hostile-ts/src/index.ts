/**
 * A TypeScript plugin that misbehaves on purpose: the JS counterpart of `tests/plugins/hostile`,
 * so the engine's tests can check that the sandbox holds for a plugin whose runtime is a whole
 * JS engine (StarlingMonkey) as it does for Rust.
 *
 * `[transforms.config]`: `behave` (required), `address` (an http URL, for `network`) and `file`
 * (a path, for `snoop`). Every behaviour but `config-error` starts only on a batch with rows; the
 * zero-row probe is answered unchanged.
 *
 * | behave | on a batch with rows |
 * |---|---|
 * | `ok` | returns the batch unchanged |
 * | `throw` | throws a plain `TypeError` (not a `PluginError`) |
 * | `spin` | loops forever |
 * | `memory-bomb` | keeps 1 MiB arrays, one after another, until memory runs out |
 * | `network` | calls `fetch(address)` if the runtime has a `fetch` (the SDK's build disables it: calling the stub aborts), and returns a `data` error if that call returned |
 * | `snoop` | looks for the environment (`process.env`) and files (`require("fs")`) the way Node code would, then returns a `data` error listing what it found (`{}`: nothing) |
 * | `toss-schema` | returns the batch unchanged if its schema is the SDK's `toss.schema()` (names, types, nullability, field metadata), else a `data` error showing both: the TS SDK's Toss schema checked against the engine's parser |
 * | `schema-only` | answers with what apache-arrow writes for a table without batches: the schema and no batch (contract 1.0: an empty batch) |
 * | `config-error` | (in `init`) throws a `config` error |
 */
import { Config, PluginError, type RecordBatch, type Transform, arrow, definePlugin, ipc, toss } from "@toss-etl/sdk";

/** The behaviour of the live instance, for the raw `transform` export below. */
let current: string | undefined;

const BEHAVIOURS = ["ok", "throw", "spin", "memory-bomb", "network", "snoop", "toss-schema", "schema-only", "config-error"] as const;
type Behave = (typeof BEHAVIOURS)[number];

/** What `snoop` found; a key is missing when nothing answered. */
interface Reached {
  file?: string;
  env?: string;
}

class Hostile implements Transform {
  private behave: Behave = "ok";
  private address = "http://127.0.0.1:9/";
  private file = "/etc/hostname";
  private hoard: Uint8Array[] = [];

  init(config: Config): void {
    config.denyUnknownKeys(["behave", "address", "file"]);
    const behave = config.requireString("behave");
    if (!(BEHAVIOURS as readonly string[]).includes(behave)) {
      throw PluginError.config(`behave: unknown behaviour ${JSON.stringify(behave)}; allowed: ${BEHAVIOURS.join(", ")}`);
    }
    this.behave = behave as Behave;
    current = behave;
    this.address = config.getString("address") ?? this.address;
    this.file = config.getString("file") ?? this.file;
    if (this.behave === "config-error") {
      throw PluginError.config("behave=config-error: this plugin refuses its config");
    }
  }

  transform(batch: RecordBatch): RecordBatch {
    if (this.behave === "toss-schema") {
      const [got, expected] = [describe(batch.schema), describe(toss.schema())];
      if (got !== expected) {
        throw PluginError.data(`toss-schema: the engine sent ${got}; the SDK's toss.schema() is ${expected}`);
      }
      return batch;
    }
    if (batch.numRows === 0) {
      return batch;
    }
    switch (this.behave) {
      case "throw": {
        const nothing = null as unknown as { field: string };
        return nothing.field as unknown as RecordBatch;
      }
      case "spin":
        for (;;) {
          // Nothing: only the deadline ends this.
        }
      case "memory-bomb":
        for (;;) {
          const chunk = new Uint8Array(1 << 20);
          chunk.fill(this.hoard.length & 0xff);
          this.hoard.push(chunk);
        }
      case "network": {
        const fetch = (globalThis as Record<string, unknown>).fetch;
        if (typeof fetch !== "function") {
          throw PluginError.data("network: this runtime has no fetch");
        }
        (fetch as (url: string) => Promise<unknown>)(this.address).catch(() => {});
        throw PluginError.data(`network: fetch(${this.address}) returned`);
      }
      case "snoop":
        throw PluginError.data(`snoop: found ${JSON.stringify(snoop(this.file))}`);
      default:
        return batch;
    }
  }
}

/** Every field's name, type, nullability and metadata, in order. */
function describe(schema: arrow.Schema): string {
  return schema.fields
    .map((f) => `${f.name}: ${f.type}${f.nullable ? "?" : ""} ${JSON.stringify([...f.metadata].sort())}`)
    .join(", ");
}

/** Looks for the environment and files the way Node code would; records what answered. */
function snoop(file: string): Reached {
  const reached: Reached = {};
  const global = globalThis as Record<string, unknown>;
  const process = global.process as { env?: Record<string, string> } | undefined;
  if (process?.env && Object.keys(process.env).length > 0) {
    reached.env = Object.entries(process.env)
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
  }
  const require = global.require as ((name: string) => { readFileSync(path: string, encoding: string): string }) | undefined;
  if (typeof require === "function") {
    try {
      reached.file = require("fs").readFileSync(file, "utf8");
    } catch {
      // Refused.
    }
  }
  return reached;
}

const exports = definePlugin(() => new Hostile());
export const init = exports.init;

/**
 * The SDK's `transform`, except for `schema-only`, which must bypass the SDK's encoder (that
 * always writes the batch) to answer as apache-arrow writes an empty table.
 */
export function transform(bytes: Uint8Array): Uint8Array {
  if (current === "schema-only") {
    const batch = ipc.decode(bytes);
    if (batch.numRows > 0) {
      return arrow.tableToIPC(new arrow.Table(batch.schema), "stream");
    }
  }
  return exports.transform(bytes);
}
