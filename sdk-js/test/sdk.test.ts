import assert from "node:assert/strict";
import { test } from "node:test";
import { RecordBatchStreamWriter, tableFromArrays } from "apache-arrow";
import { ComponentError, Config, PluginError, columns, definePlugin, ipc, toss, tossApi } from "../src/index.ts";
import { Instance } from "../src/testing.ts";

test("config getters name the key and the fix", () => {
  const config = Config.fromJson('{"rate": "3%", "n": 1.5, "t": {"x": 1}}');
  assert.throws(() => config.getNumber("rate"), /^config error: rate: must be a number, not "3%"$/);
  assert.throws(() => config.getInteger("n"), /^config error: n: must be a whole number, not 1.5$/);
  assert.throws(() => config.requireString("key"), /key: missing; set it to a string in \[transforms.config\]/);
  assert.throws(() => config.getTable("t")!.getString("x"), /t\.x: must be a string/);
  assert.throws(() => config.getTable("t")!.denyUnknownKeys([]), /t\.x: unknown key; no keys are allowed here/);
  assert.throws(() => config.denyUnknownKeys(["rate"]), /^config error: n: unknown key; allowed: rate$/);
  assert.equal(config.getString("missing"), undefined);
  assert.throws(() => Config.fromJson("[1]"), (e: PluginError) => e.kind === "config" && /a list/.test(e.message));
  assert.throws(() => Config.fromJson("{"), /not valid JSON/);
});

test("a thrown JS error reaches the engine as an `other` plugin-error in words", () => {
  const exports = definePlugin(() => ({
    init() {},
    transform() {
      throw new TypeError("x is not a function");
    },
  }));
  exports.init("{}");
  const input = ipc.encode(toss.batch([toss.auth("a", 1)]));
  assert.throws(
    () => exports.transform(input),
    (e: ComponentError) => e.payload.tag === "other" && e.payload.val.startsWith("TypeError: x is not a function (at "),
  );
  const refusing = definePlugin(() => ({
    init() {
      throw PluginError.config("key: wrong");
    },
    transform: (b) => b,
  }));
  assert.throws(() => refusing.init("{}"), (e: ComponentError) => e.payload.tag === "config" && e.payload.val === "key: wrong");
  assert.throws(() => refusing.transform(input), (e: ComponentError) => /before a successful init/.test(e.payload.val));
});

test("IPC: one batch round-trips; a schema alone is an empty batch; two batches and garbage are refused", () => {
  const batch = toss.batch([toss.auth("a", 1), toss.rev("b", 2, { buyerid: null })]);
  const back = ipc.decode(ipc.encode(batch));
  assert.equal(back.numRows, 2);
  assert.deepEqual([...columns.string(back, "buyerid")], ["buyer", null]);
  assert.equal(back.schema.fields.find((f) => f.name === "source_line")?.metadata.get(toss.POSITION_KEY), "true");

  const schemaOnly = RecordBatchStreamWriter.writeAll(tableFromArrays({ a: ["x"] }).slice(0, 0)).toUint8Array(true);
  const empty = ipc.decode(schemaOnly);
  assert.equal(empty.numRows, 0);
  assert.deepEqual(empty.schema.fields.map((f) => f.name), ["a"]);

  const one = tableFromArrays({ a: ["x"] });
  const two = RecordBatchStreamWriter.writeAll([one.batches[0], one.batches[0]]).toUint8Array(true);
  assert.throws(() => ipc.decode(two), /more than one record batch/);
  assert.throws(() => ipc.decode(new TextEncoder().encode("not arrow")), /not a valid Arrow IPC stream|empty or not/);
  assert.throws(() => ipc.decode(new Uint8Array()), /empty or not an Arrow IPC stream/);
});

test("column helpers name what is missing and what is wrong", () => {
  const batch = toss.batch([toss.auth("a", 1)]);
  assert.throws(() => columns.string(batch, "nope"), /column "nope" is missing; the batch has: record_kind, trxdate/);
  assert.throws(() => columns.int64(batch, "mid"), /column "mid" is Utf8, expected Int64/);
  assert.throws(() => columns.append(batch, [{ field: batch.schema.fields[0], values: columns.strings(["x"]) }]), /already has one/);
  assert.throws(() => columns.replace(batch, "mid", columns.strings(["x", "y"]), false), /has 2 values, but the batch has 1 rows/);
  assert.equal(columns.date32(batch, "trxdate").type.toString(), "Date32<DAY>");
  assert.equal(columns.timestampUs(batch, "occurred_at").get(0), Date.UTC(2007, 6, 6, 14, 53, 55));
});

test("the Toss schemas", () => {
  assert.equal(toss.schema().fields.length, 16);
  assert.deepEqual(toss.RECORD_KEY.map((key) => toss.schema().fields.some((f) => f.name === key)), [true, true, true, true, true, true]);
  for (const key of tossApi.SETTLEMENT_KEY) assert.ok(tossApi.settlementsSchema().fields.some((f) => f.name === key));
  assert.equal(tossApi.transactionsSchema().fields.find((f) => f.name === "amount")?.type.toString(), "Decimal[22e+4]");
  assert.equal(tossApi.decimal(new Uint32Array([123_456_700, 0, 0, 0])), "12345.6700");
  assert.equal(tossApi.decimal(new Uint32Array([0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff])), "-0.0001");
  assert.equal(toss.dateDays("2007-07-06"), 13_700);
  assert.equal(toss.koreaTimeMicros("1970-01-01 09:00:00"), 0n);
});

test("Instance checks one output schema, like the engine", () => {
  let calls = 0;
  const instance = new Instance(() => ({
    init() {},
    transform: (batch) => (calls++ === 0 ? batch : columns.select(batch, ["mid"])),
  }));
  instance.init();
  assert.throws(() => instance.transform(toss.batch([toss.auth("a", 1)])), /schema differs from the one it announced/);
});
