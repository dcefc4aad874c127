/**
 * A merchant-specific mapping, the kind a shop's web developer writes: which of the shop's
 * sales channels a payment came through (the shop has one Toss merchant id per channel), the
 * payment method in words, the amount signed (a cancel is negative), and whether the order is
 * large enough for the shop's manual review.
 *
 * ```toml
 * [transforms.config]
 * review_from = 300000              # won; orders from this amount up get review = true (default 1,000,000)
 * default_channel = "web"           # channel of a mid not in the table (default null)
 * [transforms.config.channels]      # mid → channel
 * toss = "web"
 * tossapp = "app"
 * ```
 *
 * Appends `channel` (Utf8, nullable), `method` (Utf8, nullable: an unknown paytype is null),
 * `signed_amount` (Int64) and `review` (Boolean) after every input column, which it keeps as
 * they are.
 */
import { Config, Field, PluginError, type RecordBatch, type Transform, arrow, columns, definePlugin } from "@toss-etl/sdk";

/** Toss paytype codes and the payment method each names. */
export const METHODS: Readonly<Record<string, string>> = {
  SC0010: "카드",
  SC0030: "계좌이체",
  SC0040: "가상계좌",
  SC0060: "휴대폰",
  SC0070: "유선전화",
  SC0111: "문화상품권",
  SC0112: "게임문화상품권",
};

export class ShopMapping implements Transform {
  private reviewFrom = 1_000_000n;
  private channels = new Map<string, string>();
  private defaultChannel: string | null = null;

  init(config: Config): void {
    config.denyUnknownKeys(["review_from", "default_channel", "channels"]);
    const reviewFrom = config.getInteger("review_from");
    if (reviewFrom !== undefined) {
      if (reviewFrom < 0) {
        throw PluginError.config("review_from: must not be negative");
      }
      this.reviewFrom = BigInt(reviewFrom);
    }
    this.defaultChannel = config.getString("default_channel") ?? null;
    const channels = config.getTable("channels");
    for (const mid of channels?.keys() ?? []) {
      this.channels.set(mid, channels!.requireString(mid));
    }
  }

  transform(batch: RecordBatch): RecordBatch {
    const kind = columns.string(batch, "record_kind");
    const mid = columns.string(batch, "mid");
    const paytype = columns.string(batch, "paytype");
    const amount = columns.int64(batch, "amount");
    const line = columns.int64(batch, "source_line");
    const file = columns.string(batch, "source_file");
    const rows = batch.numRows;
    const channel = new Array<string | null>(rows);
    const method = new Array<string | null>(rows);
    const signed = new Array<bigint>(rows);
    const review = new Array<boolean>(rows);
    for (let i = 0; i < rows; i++) {
      const value = amount.get(i)!;
      const record = kind.get(i);
      if (record !== "AUTH" && record !== "REV") {
        throw PluginError.data(
          `record_kind ${JSON.stringify(record)} is neither AUTH nor REV (${file.get(i)}:${line.get(i)})`,
        );
      }
      channel[i] = this.channels.get(mid.get(i)!) ?? this.defaultChannel;
      method[i] = METHODS[paytype.get(i)!] ?? null;
      signed[i] = record === "REV" ? -value : value;
      review[i] = value >= this.reviewFrom;
    }
    return columns.append(batch, [
      { field: new Field("channel", new arrow.Utf8(), true), values: columns.strings(channel) },
      { field: new Field("method", new arrow.Utf8(), true), values: columns.strings(method) },
      { field: new Field("signed_amount", new arrow.Int64(), false), values: columns.int64s(signed) },
      { field: new Field("review", new arrow.Bool(), false), values: columns.booleans(review) },
    ]);
  }
}

export const { init, transform } = definePlugin(() => new ShopMapping());
