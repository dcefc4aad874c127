import assert from "node:assert/strict";
import { test } from "node:test";
import { Config, PluginError, columns, toss } from "@toss-etl/sdk";
import { Instance } from "@toss-etl/sdk/testing";
import { COLUMN, MaskPii } from "../src/index.ts";

const JEFE = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

test("RFC 4231 test case 2", () => {
  const plugin = new MaskPii();
  plugin.setKey("Jefe");
  assert.equal(plugin.mask("what do ya want for nothing?"), JEFE);
});

test("masks buyerid, keeps nulls and every other column", () => {
  const plugin = new MaskPii();
  plugin.init(new Config({ key: "Jefe" }));
  const input = toss.batch([
    toss.auth("a", 1, { buyerid: "what do ya want for nothing?" }),
    toss.auth("b", 2, { buyerid: null }),
    toss.rev("c", 3, { buyerid: "what do ya want for nothing?" }),
    toss.rev("d", 4, { buyerid: "" }),
  ]);
  const out = plugin.transform(input);
  const masked = [...columns.string(out, COLUMN)];
  assert.deepEqual(masked.slice(0, 3), [JEFE, null, JEFE]);
  assert.equal(masked[3]?.length, 64);
  assert.notEqual(masked[3], JEFE);
  assert.deepEqual(out.schema.fields.map(String), input.schema.fields.map(String));
  for (const field of input.schema.fields) {
    if (field.name !== COLUMN) {
      assert.deepEqual([...columns.column(out, field.name)], [...columns.column(input, field.name)], field.name);
    }
  }
});

test("the key is required, non-empty, a string, and the only key", () => {
  for (const config of [{}, { key: "" }, { key: 5 }]) {
    const instance = new Instance(() => new MaskPii());
    assert.throws(
      () => instance.init(config),
      (error: PluginError) => error.kind === "config" && error.message.startsWith("key: "),
      JSON.stringify(config),
    );
  }
  const instance = new Instance(() => new MaskPii());
  assert.throws(() => instance.init({ key: "k", salt: "x" }), /salt/);
});

test("the empty probe and a batch, as the engine runs them", () => {
  const instance = new Instance(() => new MaskPii());
  instance.init({ key: "secret" });
  const schema = instance.outputSchema(toss.schema());
  assert.deepEqual(schema.fields.map(String), toss.schema().fields.map(String));
  const out = instance.transform(toss.batch([toss.auth("a", 1)]));
  assert.equal(columns.string(out, COLUMN).get(0)?.length, 64);
  // The shape hint of buyerid survives the replacement.
  assert.equal(out.schema.fields.find((f) => f.name === COLUMN)?.metadata.get(toss.SHAPE_KEY), "random");
});
