/**
 * The `[transforms.config]` table a plugin receives in `init`, as the engine passes it: a JSON
 * object (`{}` when the pipeline gives none), with `${NAME}` already replaced from the
 * environment.
 *
 * Every error is a `config` `PluginError` that starts with the key (`fee_rate: must be a number,
 * not "3%"`), so the merchant knows which line of the pipeline file to fix.
 */
import { PluginError } from "./errors.ts";

/** A JSON value as `JSON.parse` makes it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class Config {
  /** The whole table. */
  readonly table: Readonly<Record<string, Json>>;

  constructor(table: Record<string, Json> = {}) {
    this.table = table;
  }

  /** Parses the JSON text the engine passes to `init`; it must be a JSON object. */
  static fromJson(text: string): Config {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw PluginError.config(`the config is not valid JSON: ${(error as Error).message}`);
    }
    if (value === null) {
      return new Config();
    }
    if (typeof value !== "object" || Array.isArray(value)) {
      throw PluginError.config(`the config must be a table (JSON object), not ${kindOf(value as Json)}`);
    }
    return new Config(value as Record<string, Json>);
  }

  /** The keys present, in order. */
  keys(): string[] {
    return Object.keys(this.table);
  }

  /** Whether `key` is present. */
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.table, key);
  }

  /** The raw value of `key`, if present. */
  get(key: string): Json | undefined {
    return this.has(key) ? this.table[key] : undefined;
  }

  /** Errors naming the first key not in `allowed`: a typo in the pipeline file is an error, not ignored. */
  denyUnknownKeys(allowed: readonly string[]): void {
    for (const key of this.keys()) {
      if (!allowed.includes(key)) {
        const known = allowed.length === 0 ? "no keys are allowed here" : `allowed: ${allowed.join(", ")}`;
        throw PluginError.config(`${this.path(key)}: unknown key; ${known}`);
      }
    }
  }

  /** The string at `key`, if present. */
  getString(key: string): string | undefined {
    return this.typed(key, "a string", (v): v is string => typeof v === "string");
  }

  /** The string at `key`; missing is an error. */
  requireString(key: string): string {
    return this.required(key, this.getString(key), "a string");
  }

  /** The number at `key`, if present. */
  getNumber(key: string): number | undefined {
    return this.typed(key, "a number", (v): v is number => typeof v === "number" && Number.isFinite(v));
  }

  /** The number at `key`; missing is an error. */
  requireNumber(key: string): number {
    return this.required(key, this.getNumber(key), "a number");
  }

  /** The whole number at `key`, if present (a safe integer: up to 2^53 − 1 either way). */
  getInteger(key: string): number | undefined {
    return this.typed(key, "a whole number", (v): v is number => typeof v === "number" && Number.isSafeInteger(v));
  }

  /** The whole number at `key`; missing is an error. */
  requireInteger(key: string): number {
    return this.required(key, this.getInteger(key), "a whole number");
  }

  /** The boolean at `key`, if present. */
  getBoolean(key: string): boolean | undefined {
    return this.typed(key, "true or false", (v): v is boolean => typeof v === "boolean");
  }

  /** The table at `key` (`[transforms.config.KEY]`), if present, as a `Config` whose errors name `key.subkey`. */
  getTable(key: string): Config | undefined {
    const table = this.typed(
      key,
      "a table",
      (v): v is { [key: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v),
    );
    return table === undefined ? undefined : new NestedConfig(table, key);
  }

  /** What an error about `key` is called: `key`, or `outer.key` in a nested table. */
  protected path(key: string): string {
    return key;
  }

  private typed<T extends Json>(key: string, expected: string, is: (value: Json) => value is T): T | undefined {
    const value = this.get(key);
    if (value === undefined) {
      return undefined;
    }
    if (!is(value)) {
      throw PluginError.config(`${this.path(key)}: must be ${expected}, not ${kindOf(value)}`);
    }
    return value;
  }

  private required<T>(key: string, value: T | undefined, expected: string): T {
    if (value === undefined) {
      throw PluginError.config(`${this.path(key)}: missing; set it to ${expected} in [transforms.config]`);
    }
    return value;
  }
}

class NestedConfig extends Config {
  private readonly prefix: string;
  constructor(table: Record<string, Json>, prefix: string) {
    super(table);
    this.prefix = prefix;
  }
  protected override path(key: string): string {
    return `${this.prefix}.${key}`;
  }
}

/** A short description of a JSON value for error messages: `"3%"`, `5`, `a table`, `a list`. */
function kindOf(value: Json): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a table";
  return JSON.stringify(value);
}
