#!/usr/bin/env python3
"""How long `engine reconcile` takes over one month of N transactions (default 1,000,000).

    python3 bench/reconcile.py [--transactions 1000000] [--rounds 3] [--engine PATH]

Generates, once, a month (30 days) laid out as the engine's own sinks write it:
- the API's transactions (Hive-partitioned Parquet, transaction_date=…), 10 % of them cancels;
- the API's settlements (sold_date=…), one row per transaction, fees 2.5 % with VAT;
- the file feed (record_kind=…/trxdate=…), the same approvals and cancels as AUTH/REV records;
- the shop's orders as one Parquet file (a PostgreSQL query would add the database's own time).
A few hundred discrepancies are planted (missing orders, missing settlements, feed amounts off)
so that every check has something to find. Then it runs the reconcile --rounds times, each
timed by bench/measure.py (wall, CPU = user + sys, peak RSS), and prints each round and the
median. pyarrow comes from the tests' virtual environment (scripts/ensure-python.sh).
"""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, "target", "moto-venv", "bin", "python")


def generate(folder: str, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kst = "+09:00"
    first = dt.date(2026, 10, 1)
    days = 30
    per_day = count // days
    money = pa.decimal128(22, 4)
    orders = {"order_id": [], "amount": [], "status": [], "paid_at": [], "cancelled_amount": []}
    planted = {"approval_without_order": 0, "settlement_missing": 0, "feed_api_differs": 0}
    for index in range(days):
        day = first + dt.timedelta(days=index)
        tx = {name: [] for name in ("transaction_key", "payment_key", "order_id", "m_id", "method",
                                    "status", "transaction_at", "currency", "amount")}
        st = {name: [] for name in ("paid_out_date", "transaction_key", "payment_key", "order_id",
                                    "m_id", "method", "currency", "amount", "fee",
                                    "supply_amount", "vat", "pay_out_amount", "is_cancel")}
        feed = {"AUTH": {name: [] for name in ("mid", "paytype", "transaction", "oid", "amount",
                                               "status", "occurred_at")}, "REV": None}
        feed["REV"] = {name: [] for name in feed["AUTH"]}
        base = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=9)))
        for n in range(per_day):
            serial = index * per_day + n
            cancel = serial % 10 == 9
            # A cancel takes back half of payment n // 2 of the same day.
            paid = n // 2 if cancel else n
            amount = 1000 * (1 + (index * per_day + paid) * 7919 % 300)
            payment_key = f"tviva{day:%Y%m%d}{paid:010d}"
            order_id = f"order-{day:%Y%m%d}-{paid}"
            at = base + dt.timedelta(seconds=serial * 37 % 86400)
            key = f"{serial:032X}"
            event_amount = amount // 2 if cancel else amount
            tx["transaction_key"].append(key)
            tx["payment_key"].append(payment_key)
            tx["order_id"].append(order_id)
            tx["m_id"].append("tvivarepublica")
            tx["method"].append("카드")
            tx["status"].append("PARTIAL_CANCELED" if cancel else "DONE")
            tx["transaction_at"].append(at)
            tx["currency"].append("KRW")
            tx["amount"].append(event_amount)
            if serial % 50_000 == 1:
                planted["settlement_missing"] += 1
            else:
                signed = -event_amount if cancel else event_amount
                fee = (abs(signed) * 25 + 500) // 1000 * (1 if signed >= 0 else -1)
                supply = (fee * 10 + (5 if fee >= 0 else -5)) // 11
                st["paid_out_date"].append(day + dt.timedelta(days=2))
                st["transaction_key"].append(key)
                st["payment_key"].append(payment_key)
                st["order_id"].append(order_id)
                st["m_id"].append("tvivarepublica")
                st["method"].append("카드")
                st["currency"].append("KRW")
                for column, value in (("amount", signed), ("fee", fee), ("supply_amount", supply),
                                      ("vat", fee - supply), ("pay_out_amount", signed - fee)):
                    st[column].append(value)
                st["is_cancel"].append(cancel)
            kind = "REV" if cancel else "AUTH"
            feed_amount = event_amount + (1 if serial % 70_001 == 3 else 0)
            if feed_amount != event_amount:
                planted["feed_api_differs"] += 1
            feed[kind]["mid"].append("tvivarepublica")
            feed[kind]["paytype"].append("SC0010")
            feed[kind]["transaction"].append(payment_key)
            feed[kind]["oid"].append(order_id)
            feed[kind]["amount"].append(feed_amount)
            feed[kind]["status"].append("20" if cancel else "10")
            feed[kind]["occurred_at"].append(at)
            if not cancel:
                if serial % 40_000 == 2:
                    planted["approval_without_order"] += 1
                    continue
                orders["order_id"].append(order_id)
                orders["amount"].append(amount)
                orders["status"].append("paid")
                orders["paid_at"].append(at)
                orders["cancelled_amount"].append(0)
        # A cancel of order n//2 makes that order partially cancelled in the shop too.
        timestamp = pa.timestamp("us", tz=kst)
        tx_table = pa.table({
            **{name: pa.array(values) for name, values in tx.items()
               if name not in ("transaction_at", "amount")},
            "transaction_at": pa.array(tx["transaction_at"], timestamp),
            "amount": pa.array(tx["amount"], pa.int64()).cast(pa.decimal128(38, 4)).cast(money, safe=False),
            "load_unit": pa.array([f"transactions_{day}"] * len(tx["amount"])),
        })
        write(pq, tx_table, f"{folder}/transactions/transaction_date={day}/transactions_{day}.parquet")
        st_table = pa.table({
            **{name: pa.array(values) for name, values in st.items()
               if name not in ("amount", "fee", "supply_amount", "vat", "pay_out_amount")},
            **{name: pa.array(st[name], pa.int64()).cast(pa.decimal128(38, 4)).cast(money, safe=False)
               for name in ("amount", "fee", "supply_amount", "vat", "pay_out_amount")},
            "load_unit": pa.array([f"settlements_{day}"] * len(st["amount"])),
        })
        write(pq, st_table, f"{folder}/settlements/sold_date={day}/settlements_{day}.parquet")
        for kind, columns in feed.items():
            table = pa.table({
                **{name: pa.array(values) for name, values in columns.items()
                   if name != "occurred_at"},
                "occurred_at": pa.array(columns["occurred_at"], timestamp),
            })
            write(pq, table, f"{folder}/feed/record_kind={kind}/trxdate={day}/toss_{kind}_{day:%Y%m%d}.parquet")
    by_order = {}
    for position, order_id in enumerate(orders["order_id"]):
        by_order[order_id] = position
    # Partial cancels: the shop knows what was cancelled.
    cancelled = {}
    for index in range(days):
        day = first + dt.timedelta(days=index)
        for n in range(per_day):
            serial = index * per_day + n
            if serial % 10 == 9:
                amount = 1000 * (1 + (index * per_day + n // 2) * 7919 % 300)
                cancelled[f"order-{day:%Y%m%d}-{n // 2}"] = amount // 2
    for order_id, amount in cancelled.items():
        position = by_order.get(order_id)
        if position is not None:
            orders["status"][position] = "partially_cancelled"
            orders["cancelled_amount"][position] = amount
    orders_table = pa.table({
        "order_id": pa.array(orders["order_id"]),
        "amount": pa.array(orders["amount"], pa.int64()).cast(pa.decimal128(38, 4)).cast(money, safe=False),
        "status": pa.array(orders["status"]),
        "paid_at": pa.array(orders["paid_at"], pa.timestamp("us", tz=kst)),
        "cancelled_amount": pa.array(orders["cancelled_amount"], pa.int64()).cast(pa.decimal128(38, 4)).cast(money, safe=False),
    })
    write(pq, orders_table, f"{folder}/orders.parquet")
    with open(f"{folder}/planted.json", "w") as out:
        json.dump(planted, out)


def write(pq, table, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, compression="zstd")


RECONCILE = """[reconcile]
name = "bench"
dates = "2026-10-01..2026-10-30"
state_dir = "{folder}/state"
[inputs.feed]
path = "{folder}/feed"
[inputs.transactions]
path = "{folder}/transactions"
[inputs.settlements]
path = "{folder}/settlements"
[inputs.orders]
path = "{folder}/orders.parquet"
[rules]
settlement_lag_days = 3
[outputs]
report_dir = "{folder}/reports"
[[outputs.discrepancies]]
type = "parquet"
path = "{folder}/out/discrepancies"
[[outputs.summary]]
type = "parquet"
path = "{folder}/out/summary"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", default=os.path.join(ROOT, "target", "release", "engine"))
    parser.add_argument("--keep", action="store_true", help="keep the generated month")
    args = parser.parse_args()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        if os.path.exists(VENV_PYTHON) and sys.executable != VENV_PYTHON:
            os.execv(VENV_PYTHON, [VENV_PYTHON, *sys.argv])
        sys.exit("pyarrow is missing: run scripts/ensure-python.sh")
    folder = tempfile.mkdtemp(prefix="bench-reconcile-")
    print(f"generating a month of {args.transactions:,} transactions in {folder} …", flush=True)
    generate(folder, args.transactions)
    with open(f"{folder}/planted.json") as planted:
        print("planted:", planted.read())
    reconcile = f"{folder}/bench.toml"
    with open(reconcile, "w") as out:
        out.write(RECONCILE.format(folder=folder))
    measure = os.path.join(ROOT, "bench", "measure.py")
    rows = []
    for round_number in range(1, args.rounds + 1):
        result = f"{folder}/measure.json"
        report = f"{folder}/report.json"
        with open(report, "w") as stdout:
            code = subprocess.run(
                [sys.executable, "-I", "-S", measure, result, args.engine, "reconcile", reconcile,
                 "--json", "-q"], stdout=stdout).returncode
        with open(result) as taken:
            timing = json.load(taken)
        with open(report) as found:
            outcome = json.load(found)
        counts = {check["kind"]: check["count"] for check in outcome["checks"] if check["count"]}
        rows.append(timing)
        print(f"round {round_number}: exit {code} · wall {timing['wall_s']:.2f} s · CPU "
              f"{timing['cpu_s']:.2f} s · peak RSS {timing['maxrss_kib'] / 1024:.0f} MiB · "
              f"found {outcome['discrepancy_count']} {counts}", flush=True)
    print(f"median of {len(rows)}: wall {statistics.median(r['wall_s'] for r in rows):.2f} s · "
          f"CPU {statistics.median(r['cpu_s'] for r in rows):.2f} s · peak RSS "
          f"{statistics.median(r['maxrss_kib'] for r in rows) / 1024:.0f} MiB "
          f"({args.transactions:,} transactions, 30 days, {os.cpu_count()} cores)")
    if not args.keep:
        subprocess.run(["rm", "-rf", folder], check=False)


if __name__ == "__main__":
    main()
