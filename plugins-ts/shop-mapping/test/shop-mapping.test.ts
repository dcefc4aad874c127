import assert from "node:assert/strict";
import { test } from "node:test";
import { PluginError, columns, toss } from "@toss-etl/sdk";
import { Instance } from "@toss-etl/sdk/testing";
import { ShopMapping } from "../src/index.ts";

function instance(config: object): Instance {
  const made = new Instance(() => new ShopMapping());
  made.init(config);
  return made;
}

test("maps channel, method, signed amount and review", () => {
  const plugin = instance({ review_from: 1000, default_channel: "web", channels: { tossapp: "app" } });
  const out = plugin.transform(
    toss.batch([
      toss.auth("a", 999),
      toss.rev("b", 1000, { mid: "tossapp", paytype: "SC0030" }),
      toss.auth("c", 5, { paytype: "SC9999" }),
    ]),
  );
  assert.deepEqual([...columns.string(out, "channel")], ["web", "app", "web"]);
  assert.deepEqual([...columns.string(out, "method")], ["카드", "계좌이체", null]);
  assert.deepEqual([...columns.int64(out, "signed_amount")], [999n, -1000n, 5n]);
  assert.deepEqual([...columns.boolean(out, "review")], [false, true, false]);
  // The input columns come first, unchanged.
  assert.deepEqual(out.schema.fields.slice(0, 16).map(String), toss.schema().fields.map(String));
});

test("config errors name the key", () => {
  const cases: [object, RegExp][] = [
    [{ review_from: "much" }, /^review_from: must be a whole number/],
    [{ review_from: -1 }, /^review_from: must not be negative/],
    [{ channels: { toss: 5 } }, /^channels\.toss: must be a string/],
    [{ chanels: {} }, /^chanels: unknown key/],
  ];
  for (const [config, message] of cases) {
    assert.throws(
      () => instance(config),
      (error: PluginError) => error.kind === "config" && message.test(error.message),
      JSON.stringify(config),
    );
  }
});

test("a missing column is a data error naming it", () => {
  const plugin = instance({});
  const batch = toss.batch([toss.auth("a", 1)]);
  const names = batch.schema.fields.map((f) => f.name).filter((name) => name !== "paytype");
  assert.throws(
    () => plugin.transform(columns.select(batch, names)),
    (error: PluginError) => error.kind === "data" && error.message.startsWith('column "paytype" is missing; the batch has: record_kind'),
  );
});
