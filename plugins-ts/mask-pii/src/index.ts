/**
 * Masks the buyer: replaces `buyerid` with `hex(HMAC-SHA256(key, buyerid))`, 64 lowercase hex
 * digits; a null `buyerid` stays null. The TypeScript port of `plugins/mask-pii` (Rust): the
 * same config, the same errors, the same bytes out (a test in the repository compares the two).
 *
 * ```toml
 * [transforms.config]
 * key = "${PII_KEY}"    # required, non-empty; the UTF-8 bytes of the string are the HMAC key
 * ```
 *
 * The HMAC is @noble/hashes (pure JS, synchronous): the engine's JS runtime is not promised to
 * have a synchronous `crypto.subtle`, and a transform must answer synchronously.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { Config, PluginError, type RecordBatch, type Transform, columns, definePlugin } from "@toss-etl/sdk";

/** The column this plugin masks. */
export const COLUMN = "buyerid";

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
const utf8 = new TextEncoder();

export class MaskPii implements Transform {
  private keyed: ReturnType<typeof hmac.create> | undefined;

  init(config: Config): void {
    config.denyUnknownKeys(["key"]);
    this.setKey(config.requireString("key"));
  }

  /** Masks with `key` (the UTF-8 bytes of the string). */
  setKey(key: string): void {
    if (key.length === 0) {
      throw PluginError.config("key: must not be empty; set it to a long random secret");
    }
    this.keyed = hmac.create(sha256, utf8.encode(key));
  }

  /** The mask of one value: lowercase hex HMAC-SHA256. */
  mask(value: string): string {
    if (this.keyed === undefined) {
      throw PluginError.other("mask-pii has no key: init was not called");
    }
    const digest = this.keyed.clone().update(utf8.encode(value)).digest();
    let hex = "";
    for (let i = 0; i < digest.length; i++) {
      hex += HEX[digest[i]];
    }
    return hex;
  }

  transform(batch: RecordBatch): RecordBatch {
    const buyer = columns.string(batch, COLUMN);
    const masked = new Array<string | null>(buyer.length);
    for (let i = 0; i < buyer.length; i++) {
      const value = buyer.get(i);
      masked[i] = value === null ? null : this.mask(value);
    }
    const nullable = batch.schema.fields.find((f) => f.name === COLUMN)?.nullable ?? true;
    return columns.replace(batch, COLUMN, columns.strings(masked), nullable);
  }
}

export const { init, transform } = definePlugin(() => new MaskPii());
