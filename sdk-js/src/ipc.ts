/**
 * Arrow IPC streams as the contract carries them: one schema message followed by one record
 * batch message, uncompressed. The glue uses these to talk to the engine; in tests they run a
 * plugin on exactly the bytes the engine sends and reads.
 *
 * A stream with a schema and no batch (what apache-arrow writes for a table without batches) is
 * read as an empty batch of that schema: the contract says so since the 1.0 clarification, and
 * the engine reads such an answer the same way.
 */
import {
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
} from "apache-arrow";
import { PluginError } from "./errors.ts";

/** Encodes `batch` as an uncompressed Arrow IPC stream: schema, the batch, end-of-stream marker. */
export function encode(batch: RecordBatch): Uint8Array {
  try {
    const writer = new RecordBatchStreamWriter();
    writer.reset(undefined, batch.schema);
    writer.write(batch);
    writer.finish();
    return writer.toUint8Array(true);
  } catch (error) {
    throw PluginError.other(`cannot encode the output batch as Arrow IPC: ${describe(error)}`);
  }
}

/**
 * Decodes an Arrow IPC stream holding one record batch (or none: then an empty batch of its
 * schema). More than one batch, or bytes that are not a stream, are an `other` error.
 */
export function decode(bytes: Uint8Array): RecordBatch {
  if (bytes.length === 0) {
    throw PluginError.other("the input is empty or not an Arrow IPC stream");
  }
  let schema: Schema | undefined;
  const batches: RecordBatch[] = [];
  try {
    const reader = RecordBatchReader.from(bytes);
    reader.open();
    // Read before iterating: a reader that reaches the end of its stream forgets its schema.
    schema = reader.schema;
    for (const batch of reader) {
      batches.push(batch);
    }
  } catch (error) {
    throw PluginError.other(`the input is not a valid Arrow IPC stream: ${describe(error)}`);
  }
  if (schema === undefined || schema.fields === undefined) {
    throw PluginError.other("the input is empty or not an Arrow IPC stream");
  }
  if (batches.length > 1) {
    throw PluginError.other(
      "the input Arrow IPC stream holds more than one record batch; the contract allows exactly one",
    );
  }
  return batches[0] ?? emptyBatch(schema);
}

/** A batch with `schema` and no rows: what the engine sends first to learn a plugin's output schema. */
export function emptyBatch(schema: Schema): RecordBatch {
  // Without data, apache-arrow makes a zero-length child of each field's type.
  return new RecordBatch(schema, undefined);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
