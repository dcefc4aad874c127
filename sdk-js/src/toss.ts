/**
 * The batches the engine's built-in Toss parser produces (the file feed): their schema, and a
 * builder of test batches of that schema. The same columns, in the same order, with the same
 * field metadata as the Rust SDK's `toss_etl_sdk::toss::schema()`, which is the engine's own;
 * a test in the repository checks that the two agree.
 *
 * | column | Arrow type | nullable |
 * |---|---|---|
 * | record_kind | Utf8 (`AUTH` / `REV`) | no |
 * | trxdate | Date32 | no |
 * | mid, paytype, transaction, oid | Utf8 | no |
 * | financecode, financename, buyerid | Utf8 | yes |
 * | amount | Int64 (whole won) | no |
 * | useescrow | Boolean | no |
 * | occurred_at | Timestamp(Microsecond, "+09:00") | no |
 * | authnumber, status, source_file | Utf8 | no |
 * | source_line | Int64 | no |
 *
 * A record is identified by (record_kind, trxdate, mid, paytype, transaction, oid). Some fields
 * carry a hint for the engine's sinks under `engine.shape` in their metadata; a plugin that keeps
 * a field (the column helpers do) keeps its hint.
 */
import {
  Bool,
  DateDay,
  Field,
  Int64,
  RecordBatch,
  Schema,
  Struct,
  TimestampMicrosecond,
  Utf8,
  makeData,
  vectorFromArray,
} from "apache-arrow";

/** The time zone of `occurred_at`: Korea time. */
export const KOREA_TIME_ZONE = "+09:00";
/** The field metadata key of a column's shape hint. */
export const SHAPE_KEY = "engine.shape";
/** The field metadata key that marks `source_line` as the row's position in its file. */
export const POSITION_KEY = "engine.position";
/** The columns that identify a record. */
export const RECORD_KEY = ["record_kind", "trxdate", "mid", "paytype", "transaction", "oid"] as const;

/** `name` with a shape hint (and more metadata) in its field metadata. */
export function shaped(field: Field, shape: string, more: Record<string, string> = {}): Field {
  const metadata = new Map<string, string>([[SHAPE_KEY, shape], ...Object.entries(more)]);
  return new Field(field.name, field.type, field.nullable, metadata);
}

/** The schema of the batches the Toss parser produces. */
export function schema(): Schema {
  const text = (name: string, nullable: boolean) => new Field(name, new Utf8(), nullable);
  return new Schema([
    text("record_kind", false),
    new Field("trxdate", new DateDay(), false),
    text("mid", false),
    text("paytype", false),
    shaped(text("transaction", false), "shared-prefixes"),
    shaped(text("oid", false), "shared-prefixes"),
    text("financecode", true),
    text("financename", true),
    shaped(text("buyerid", true), "random"),
    new Field("amount", new Int64(), false),
    new Field("useescrow", new Bool(), false),
    shaped(new Field("occurred_at", new TimestampMicrosecond(KOREA_TIME_ZONE), false), "ascending"),
    shaped(text("authnumber", false), "random"),
    text("status", false),
    shaped(text("source_file", false), "constant-per-unit"),
    shaped(new Field("source_line", new Int64(), false), "ascending", { [POSITION_KEY]: "true" }),
  ]);
}

/** One record as the Toss parser reads it, for test batches ({@link batch}). */
export interface Row {
  record_kind: string;
  /** The business date, `YYYY-MM-DD`. */
  trxdate: string;
  mid: string;
  paytype: string;
  transaction: string;
  oid: string;
  financecode: string | null;
  financename: string | null;
  buyerid: string | null;
  /** Whole won. */
  amount: bigint | number;
  useescrow: boolean;
  /** Korea time, `YYYY-MM-DD HH:MM:SS`. */
  occurred_at: string;
  authnumber: string;
  status: string;
  source_file: string;
  source_line: bigint | number;
}

/** A card approval (`AUTH`, SC0010, status 10) of `amount` won for order `oid`; `more` overrides fields. */
export function auth(oid: string, amount: number | bigint, more: Partial<Row> = {}): Row {
  return {
    record_kind: "AUTH",
    trxdate: "2007-07-06",
    mid: "toss",
    paytype: "SC0010",
    transaction: `toss${oid}`,
    oid,
    financecode: "61100",
    financename: "현대",
    buyerid: "buyer",
    amount,
    useescrow: false,
    occurred_at: "2007-07-06 23:53:55",
    authnumber: "00176594",
    status: "10",
    source_file: "toss_AUTH_20070706.dat",
    source_line: 1,
    ...more,
  };
}

/** A card cancel (`REV`, SC0010, status 20) of `amount` won for order `oid`; `more` overrides fields. */
export function rev(oid: string, amount: number | bigint, more: Partial<Row> = {}): Row {
  return auth(oid, amount, { record_kind: "REV", status: "20", source_file: "toss_REV_20070706.dat", ...more });
}

/** A batch of {@link schema} holding `rows`. Throws on a malformed date or time (it is meant for tests). */
export function batch(rows: readonly Row[]): RecordBatch {
  const s = schema();
  const text = (pick: (row: Row) => string | null) => vectorFromArray(rows.map(pick), new Utf8()).data[0];
  const int64 = (pick: (row: Row) => bigint | number) =>
    makeData({ type: new Int64(), length: rows.length, nullCount: 0, data: BigInt64Array.from(rows, (r) => BigInt(pick(r))) });
  const children = [
    text((r) => r.record_kind),
    makeData({ type: new DateDay(), length: rows.length, nullCount: 0, data: Int32Array.from(rows, (r) => dateDays(r.trxdate)) }),
    text((r) => r.mid),
    text((r) => r.paytype),
    text((r) => r.transaction),
    text((r) => r.oid),
    text((r) => r.financecode),
    text((r) => r.financename),
    text((r) => r.buyerid),
    int64((r) => r.amount),
    vectorFromArray(rows.map((r) => r.useescrow), new Bool()).data[0],
    makeData({
      type: new TimestampMicrosecond(KOREA_TIME_ZONE),
      length: rows.length,
      nullCount: 0,
      data: BigInt64Array.from(rows, (r) => koreaTimeMicros(r.occurred_at)),
    }),
    text((r) => r.authnumber),
    text((r) => r.status),
    text((r) => r.source_file),
    int64((r) => r.source_line),
  ];
  return new RecordBatch(s, makeData({ type: new Struct(s.fields), length: rows.length, nullCount: 0, children }));
}

/** Days since 1970-01-01 of a `YYYY-MM-DD` date. */
export function dateDays(date: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!match) {
    throw new Error(`not a YYYY-MM-DD date: ${JSON.stringify(date)}`);
  }
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) / 86_400_000;
}

/** Microseconds since the Unix epoch of `YYYY-MM-DD HH:MM:SS` in Korea time (UTC+9). */
export function koreaTimeMicros(time: string): bigint {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(time);
  if (!match) {
    throw new Error(`not a YYYY-MM-DD HH:MM:SS time: ${JSON.stringify(time)}`);
  }
  const [, y, mo, d, h, mi, s] = match.map(Number);
  const millis = Date.UTC(y, mo - 1, d, h, mi, s) - 9 * 3_600_000;
  return BigInt(millis) * 1000n;
}
