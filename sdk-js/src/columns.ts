/**
 * Typed column access by name, and batches with columns added or replaced. Every error is a
 * `data` `PluginError` that names the column (and the columns the batch does have), so a plugin
 * put after the wrong stage says what it is missing instead of failing on `undefined`.
 */
import {
  Bool,
  DataType,
  DateDay,
  Field,
  Float64,
  Int32,
  Int64,
  RecordBatch,
  Schema,
  Struct,
  TimestampMicrosecond,
  Utf8,
  Vector,
  makeData,
  vectorFromArray,
  type Data,
} from "apache-arrow";
import { PluginError } from "./errors.ts";

/** The column `name`, of any type. */
export function column(batch: RecordBatch, name: string): Vector {
  const index = batch.schema.fields.findIndex((field) => field.name === name);
  if (index < 0) {
    const have = batch.schema.fields.map((field) => field.name);
    throw PluginError.data(
      `column "${name}" is missing; the batch has: ${have.length === 0 ? "no columns" : have.join(", ")}`,
    );
  }
  return batch.getChildAt(index) as Vector;
}

function typed<T extends DataType>(batch: RecordBatch, name: string, expected: string, is: (type: DataType) => boolean): Vector<T> {
  const vector = column(batch, name);
  if (!is(vector.type)) {
    throw PluginError.data(`column "${name}" is ${vector.type}, expected ${expected}`);
  }
  return vector as Vector<T>;
}

/** The `Utf8` column `name` (values are `string | null`). */
export function string(batch: RecordBatch, name: string): Vector<Utf8> {
  return typed(batch, name, "Utf8", DataType.isUtf8);
}

/** The `Int64` column `name` (values are `bigint | null`). */
export function int64(batch: RecordBatch, name: string): Vector<Int64> {
  return typed(batch, name, "Int64", (t) => DataType.isInt(t) && t.bitWidth === 64 && t.isSigned);
}

/** The `Int32` column `name`. */
export function int32(batch: RecordBatch, name: string): Vector<Int32> {
  return typed(batch, name, "Int32", (t) => DataType.isInt(t) && t.bitWidth === 32 && t.isSigned);
}

/** The `Float64` column `name`. */
export function float64(batch: RecordBatch, name: string): Vector<Float64> {
  return typed(batch, name, "Float64", (t) => DataType.isFloat(t) && t.precision === 2);
}

/** The `Boolean` column `name`. */
export function boolean(batch: RecordBatch, name: string): Vector<Bool> {
  return typed(batch, name, "Boolean", DataType.isBool);
}

/** The `Date32` column `name` (apache-arrow gives each value as milliseconds since the epoch). */
export function date32(batch: RecordBatch, name: string): Vector<DateDay> {
  return typed(batch, name, "Date32", (t) => DataType.isDate(t) && t.unit === 0);
}

/** The `Timestamp(Microsecond, _)` column `name`, whatever its time zone. */
export function timestampUs(batch: RecordBatch, name: string): Vector<TimestampMicrosecond> {
  return typed(batch, name, "Timestamp(Microsecond)", (t) => DataType.isTimestamp(t) && t.unit === 2);
}

/** A `Utf8` vector of `values` (`null` for null). */
export function strings(values: readonly (string | null | undefined)[]): Vector<Utf8> {
  return vectorFromArray(values as (string | null)[], new Utf8());
}

/** An `Int64` vector of `values`. */
export function int64s(values: readonly (bigint | null | undefined)[]): Vector<Int64> {
  return vectorFromArray(values as (bigint | null)[], new Int64());
}

/** A `Boolean` vector of `values`. */
export function booleans(values: readonly (boolean | null | undefined)[]): Vector<Bool> {
  return vectorFromArray(values as (boolean | null)[], new Bool());
}

/** One column to add with {@link append}. */
export interface NewColumn {
  field: Field;
  values: Vector;
}

/**
 * `batch` with `columns` appended after its own. A name already taken, or a length other than
 * the batch's, is a `data` error.
 */
export function append(batch: RecordBatch, columns: readonly NewColumn[]): RecordBatch {
  const fields = [...batch.schema.fields];
  const children = batch.schema.fields.map((_, index) => batch.data.children[index]);
  for (const { field, values } of columns) {
    if (fields.some((existing) => existing.name === field.name)) {
      throw PluginError.data(`cannot add column "${field.name}": the batch already has one of that name`);
    }
    fields.push(field);
    children.push(single(values, field.name, batch.numRows));
  }
  return build(batch, fields, children);
}

/**
 * `batch` with column `name` replaced by `values`: same position, the field keeps its name and
 * metadata and takes the new values' type and `nullable`.
 */
export function replace(batch: RecordBatch, name: string, values: Vector, nullable: boolean): RecordBatch {
  column(batch, name);
  const fields = batch.schema.fields.map((field) =>
    field.name === name ? new Field(name, values.type, nullable, field.metadata) : field,
  );
  const children = batch.schema.fields.map((field, index) =>
    field.name === name ? single(values, name, batch.numRows) : batch.data.children[index],
  );
  return build(batch, fields, children);
}

function build(batch: RecordBatch, fields: Field[], children: Data[]): RecordBatch {
  const schema = new Schema(fields, batch.schema.metadata);
  const data = makeData({ type: new Struct(fields), length: batch.numRows, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

/** The one `Data` chunk of `values`, checked against the batch's row count. */
function single(values: Vector, name: string, rows: number): Data {
  if (values.length !== rows) {
    throw PluginError.data(`column "${name}" has ${values.length} values, but the batch has ${rows} rows`);
  }
  if (values.data.length === 1) {
    return values.data[0];
  }
  return vectorFromArray([...values], values.type).data[0];
}

/**
 * `batch` with only the columns `names`, in that order (apache-arrow's own `RecordBatch.select`
 * leaves holes when the order differs). A missing name is a `data` error naming it.
 */
export function select(batch: RecordBatch, names: readonly string[]): RecordBatch {
  const fields: Field[] = [];
  const children: Data[] = [];
  for (const name of names) {
    column(batch, name);
    const index = batch.schema.fields.findIndex((field) => field.name === name);
    fields.push(batch.schema.fields[index]);
    children.push(batch.data.children[index]);
  }
  return build(batch, fields, children);
}
