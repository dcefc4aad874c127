/**
 * The one error type of a plugin, mirroring the contract's `plugin-error` variant
 * (`wit/transform.wit`): `config`, `data` or `other`, each with a message the engine shows the
 * merchant as it is. Say what is wrong and how to fix it.
 *
 * Throw a `PluginError` from `init` or `transform`; the SDK's glue turns it into the WIT error
 * of the same kind. Any other thrown value (a `TypeError` from a bug, a string) becomes an
 * `other` error with its message, so a mistake in a plugin reads as a sentence in the engine's
 * summary instead of an abort.
 */

/** The WIT case names of `plugin-error`. */
export type ErrorKind = "config" | "data" | "other";

/** Why a plugin refused a call. */
export class PluginError extends Error {
  /** `"config"`, `"data"` or `"other"`: the WIT case it becomes. */
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = "PluginError";
    this.kind = kind;
  }

  /** The `[transforms.config]` table is not what the plugin needs (name the key). */
  static config(message: string): PluginError {
    return new PluginError("config", message);
  }

  /** The input batch cannot be transformed (name the column, the value, `source_file:source_line`). */
  static data(message: string): PluginError {
    return new PluginError("data", message);
  }

  /** Anything else. */
  static other(message: string): PluginError {
    return new PluginError("other", message);
  }

  /** The same kind of error with `context: ` put before the message. */
  context(context: string): PluginError {
    return new PluginError(this.kind, `${context}: ${this.message}`);
  }

  /** `config error: …`, `data error: …`, or the message alone for `other` (as the Rust SDK shows them). */
  override toString(): string {
    return this.kind === "other" ? this.message : `${this.kind} error: ${this.message}`;
  }
}

/**
 * What the glue makes of anything thrown: a `PluginError` as it is; a JS `Error` (a bug, a
 * failed assertion) as `other` with its name, message and the first line of its stack, so the
 * author can find the line; anything else as `other` with its text.
 */
export function toPluginError(thrown: unknown): PluginError {
  if (thrown instanceof PluginError) {
    return thrown;
  }
  if (thrown instanceof Error) {
    const where = firstStackFrame(thrown);
    const text = `${thrown.name}: ${thrown.message}`;
    return PluginError.other(where ? `${text} (at ${where})` : text);
  }
  let text: string;
  try {
    text = typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = String(thrown);
  }
  return PluginError.other(`the plugin threw ${text}`);
}

/** The first frame of a stack, in V8's (`    at f (file:1:2)`) or SpiderMonkey's (`f@file:1:2`) form. */
function firstStackFrame(error: Error): string | undefined {
  const lines = (error.stack ?? "").split("\n").map((line) => line.trim());
  for (const line of lines) {
    if (line.startsWith("at ")) {
      return line.slice(3);
    }
    if (/@.*:\d+:\d+$/.test(line)) {
      return line;
    }
  }
  return undefined;
}
