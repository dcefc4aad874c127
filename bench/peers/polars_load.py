"""polars, the fastest peer: lazy scan_csv with an explicit schema -> sink_parquet (zstd).

    bench/.venv/bin/python bench/peers/polars_load.py INPUT.dat OUT.parquet THREADS

Same schema as duckdb_load.py: amount Int64, authnumber String, paydate parsed to a
Datetime; the rest String. UTF-8 input only (polars reads UTF-8 and nothing else).
THREADS sets POLARS_MAX_THREADS, which polars reads when it is imported.
"""
import os
import sys

os.environ["POLARS_MAX_THREADS"] = sys.argv[3]

import polars as pl  # noqa: E402

SCHEMA = {
    "mid": pl.String, "paytype": pl.String, "transaction": pl.String, "oid": pl.String,
    "financecode": pl.String, "financename": pl.String, "buyerid": pl.String,
    "amount": pl.Int64, "useescrow": pl.String, "paydate": pl.String,
    "authnumber": pl.String, "status": pl.String,
}


def main() -> int:
    src, out = sys.argv[1], sys.argv[2]
    (
        pl.scan_csv(src, separator=";", has_header=False, schema=SCHEMA, quote_char=None)
        .with_columns(pl.col("paydate").str.strptime(pl.Datetime("us"), "%Y%m%d%H%M%S"))
        .sink_parquet(out, compression="zstd")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
