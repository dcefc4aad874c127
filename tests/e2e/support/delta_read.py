"""Reads a Delta table the engine wrote with readers no one here wrote (the deltalake package,
DuckDB's delta extension) and prints what they see as JSON, for the end-to-end tests.

    delta_read.py summary URI               rows, versions, rows per load unit, live files
    delta_read.py compare URI PARQUET_LAKE  each reader's rows against the Parquet lake's
    delta_read.py poll URI OUT STOP         until the file STOP exists, reads the latest version
                                            again and again, one JSON line per read in OUT

An s3:// URI is reached with the test server of S3_ENDPOINT and the AWS_* credentials.
"""

import datetime
import decimal
import glob
import json
import os
import sys
import time

from deltalake import DeltaTable

UNIT = "load_unit"


def storage_options():
    endpoint = os.environ.get("S3_ENDPOINT")
    if not endpoint:
        return None
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "conditional_put": "etag",
    }


def table(uri):
    return DeltaTable(uri, storage_options=storage_options())


def per_unit(arrow_table):
    counts = {}
    for unit in arrow_table.column(UNIT).to_pylist():
        counts[unit] = counts.get(unit, 0) + 1
    return counts


def canonical(value):
    if isinstance(value, datetime.datetime):
        return "ts:%d" % round(value.timestamp() * 1_000_000)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    return value if value is None else str(value)


def rows(arrow_table):
    names = sorted(name for name in arrow_table.column_names if name != UNIT)
    columns = [arrow_table.column(name).to_pylist() for name in names]
    return sorted(json.dumps([canonical(c[i]) for c in columns]) for i in range(arrow_table.num_rows))


def summary(uri):
    dt = table(uri)
    data = dt.to_pyarrow_table()
    print(json.dumps({
        "version": dt.version(),
        "rows": data.num_rows,
        "units": per_unit(data),
        "files": dt.file_uris(),
        "columns": data.column_names,
    }))


def duckdb_table(uri):
    import duckdb
    import duckdb_extension_delta

    folder = os.path.dirname(duckdb_extension_delta.__file__)
    extension = glob.glob(os.path.join(folder, "extensions", "*", "delta.duckdb_extension"))[0]
    connection = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    connection.sql(f"LOAD '{extension}'")
    return connection.sql(f"SELECT * FROM delta_scan('{uri}')").to_arrow_table()


def compare(uri, parquet_lake):
    import pyarrow.dataset as ds

    lake = ds.dataset(parquet_lake, format="parquet", partitioning="hive").to_table()
    expected = rows(lake)
    by_deltalake = rows(table(uri).to_pyarrow_table())
    result = {"parquet_rows": len(expected), "deltalake_rows": len(by_deltalake),
              "deltalake_equal": by_deltalake == expected}
    if not uri.startswith("s3://"):
        by_duckdb = rows(duckdb_table(uri))
        result.update({"duckdb_rows": len(by_duckdb), "duckdb_equal": by_duckdb == expected})
    if not result["deltalake_equal"]:
        result["first_difference"] = sorted(set(by_deltalake) ^ set(expected))[:5]
    print(json.dumps(result))


def poll(uri, out, stop):
    with open(out, "w") as sink:
        while not os.path.exists(stop):
            try:
                dt = table(uri)
                data = dt.to_pyarrow_table(columns=[UNIT])
            except Exception as err:  # no table yet, or a version vanished under the reader
                sink.write(json.dumps({"error": str(err)[:200]}) + "\n")
                time.sleep(0.2)
                continue
            sink.write(json.dumps({"version": dt.version(), "units": per_unit(data)}) + "\n")
            sink.flush()
            time.sleep(0.1)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "summary":
        summary(sys.argv[2])
    elif command == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif command == "poll":
        poll(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {command}")
    # The deltalake package's runtime threads can abort the interpreter's teardown ("terminate
    # called without an active exception") after everything was printed: leave without one.
    sys.stdout.flush()
    os._exit(0)
