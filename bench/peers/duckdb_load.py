"""DuckDB, the yardstick: read_csv with an explicit schema -> COPY ... TO zstd Parquet.

    bench/.venv/bin/python bench/peers/duckdb_load.py INPUT.dat OUT.parquet THREADS [ZSTD_LEVEL]

Without ZSTD_LEVEL, DuckDB's own default level (3).

The schema is the Toss record's (bench/README.md): amount BIGINT, authnumber VARCHAR (its
leading zeros kept), paydate parsed to TIMESTAMP; the rest VARCHAR. UTF-8 input only: DuckDB
reads EUC-KR only through its `encodings` extension, which it downloads at run time.
Prints the rows written.
"""
import sys

import duckdb

COLUMNS = {
    "mid": "VARCHAR", "paytype": "VARCHAR", "transaction": "VARCHAR", "oid": "VARCHAR",
    "financecode": "VARCHAR", "financename": "VARCHAR", "buyerid": "VARCHAR",
    "amount": "BIGINT", "useescrow": "VARCHAR", "paydate": "TIMESTAMP",
    "authnumber": "VARCHAR", "status": "VARCHAR",
}


def main() -> int:
    src, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    level = f", COMPRESSION_LEVEL {int(sys.argv[4])}" if len(sys.argv) > 4 else ""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    rows = con.execute(
        f"COPY (SELECT * FROM read_csv(?, delim = ';', header = false, quote = '', escape = '',"
        f" columns = {columns}, timestampformat = '%Y%m%d%H%M%S'))"
        f" TO '{out}' (FORMAT parquet, COMPRESSION zstd{level})",
        [src],
    ).fetchone()[0]
    print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
