/**
 * The batches the engine's `toss-api` source produces from Toss Payments' v1 REST API: one
 * schema per dataset, the same as the Rust SDK's `toss_etl_sdk::toss_api`.
 *
 * Money is `Decimal128(22, 4)` (apache-arrow reads each value as four 32-bit words; the
 * `decimal` helper turns one into a string), times `Timestamp(Microsecond, "+09:00")`, days
 * `Date32`. A transaction is identified by `transaction_key`, a settlement row by
 * (`transaction_key`, `sold_date`). `load_unit` names the day's pull a row came from.
 */
import { Bool, DateDay, Decimal, Field, Schema, TimestampMicrosecond, Utf8 } from "apache-arrow";
import { KOREA_TIME_ZONE, shaped } from "./toss.ts";

/** Precision of every money column. */
export const MONEY_PRECISION = 22;
/** Scale of every money column. */
export const MONEY_SCALE = 4;
/** The columns that identify a transaction. */
export const TRANSACTION_KEY = ["transaction_key"] as const;
/** The columns that identify a settlement row. */
export const SETTLEMENT_KEY = ["transaction_key", "sold_date"] as const;

const text = (name: string, nullable: boolean) => new Field(name, new Utf8(), nullable);
const money = (name: string) => new Field(name, new Decimal(MONEY_SCALE, MONEY_PRECISION, 128), true);
const koreaTime = (name: string) => new Field(name, new TimestampMicrosecond(KOREA_TIME_ZONE), true);

/** The schema of the transactions dataset (`GET /v1/transactions`). */
export function transactionsSchema(): Schema {
  return new Schema([
    new Field("transaction_date", new DateDay(), false),
    shaped(text("transaction_key", false), "random"),
    shaped(text("payment_key", true), "random"),
    text("order_id", true),
    text("m_id", true),
    text("method", true),
    text("status", true),
    shaped(koreaTime("transaction_at"), "ascending"),
    text("currency", true),
    money("amount"),
    new Field("use_escrow", new Bool(), true),
    text("customer_key", true),
    text("receipt_url", true),
    shaped(text("load_unit", false), "constant-per-unit"),
  ]);
}

/** The schema of the settlements dataset (`GET /v1/settlements`). */
export function settlementsSchema(): Schema {
  return new Schema([
    new Field("sold_date", new DateDay(), false),
    new Field("paid_out_date", new DateDay(), true),
    shaped(text("transaction_key", false), "random"),
    shaped(text("payment_key", true), "random"),
    text("order_id", true),
    text("m_id", true),
    text("method", true),
    text("currency", true),
    koreaTime("approved_at"),
    money("amount"),
    money("fee"),
    money("supply_amount"),
    money("vat"),
    money("pay_out_amount"),
    money("interest_fee"),
    money("fee_base"),
    money("fee_installment_discount"),
    money("fee_installment"),
    money("fee_point_saving"),
    money("fee_etc"),
    money("fee_other"),
    new Field("is_cancel", new Bool(), false),
    money("cancel_amount"),
    koreaTime("canceled_at"),
    shaped(text("load_unit", false), "constant-per-unit"),
  ]);
}

/**
 * A `Decimal128(_, scale)` value as apache-arrow gives it (four little-endian 32-bit words of a
 * two's-complement integer) as decimal text: `12345.6700` for scale 4.
 */
export function decimal(words: Uint32Array, scale: number = MONEY_SCALE): string {
  let value = 0n;
  for (let i = 3; i >= 0; i--) {
    value = (value << 32n) | BigInt(words[i]);
  }
  if (value >= 1n << 127n) {
    value -= 1n << 128n;
  }
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${whole}${scale > 0 ? `.${fraction}` : ""}`;
}
