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
    # argv[3] is the thread count (set through POLARS_MAX_THREADS); argv[4] the zstd level,
    # without which polars' own default (3).
    level = {"compression_level": int(sys.argv[4])} if len(sys.argv) > 4 else {}
    (
        pl.scan_csv(src, separator=";", has_header=False, schema=SCHEMA, quote_char=None)
        .with_columns(pl.col("paydate").str.strptime(pl.Datetime("us"), "%Y%m%d%H%M%S"))
        .sink_parquet(out, compression="zstd", **level)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
