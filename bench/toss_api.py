#!/usr/bin/env python3
"""The REST API source's pull rate and memory: a month of transactions served by a local
server that speaks Toss's v1 API (Basic auth, bare JSON arrays, startingAfter paging), pulled
by `engine run` into the Parquet lake.

    python3 bench/toss_api.py [--records 1000000] [--days 30] [--rounds 3] [--engine PATH]

Every page is generated before the clock starts and served from memory, so the server costs
the engine nothing but the socket. Each round times two runs with /usr/bin/time: the first
pull of the month (everything written), then the same pull again (every day pulled, none
changed, nothing written). It prints wall time, CPU seconds (user + sys), records per second
of wall time and peak RSS for each, per round, and the medians.
"""

import argparse
import base64
import datetime
import hashlib
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.parse

KEY = "test_sk_benchBenchBench0123456789"
PAGE_SIZE = 5000
KOREA = datetime.timezone(datetime.timedelta(hours=9))


def generate(records, first_day, days):
    """Rows per day, each day's rows in transactionAt order."""
    per_day = [records // days + (1 if d < records % days else 0) for d in range(days)]
    by_day = {}
    for d, count in enumerate(per_day):
        day = first_day + datetime.timedelta(days=d)
        rows = []
        for n in range(count):
            seconds = n * 86399 // max(count, 1)
            at = datetime.datetime.combine(day, datetime.time(), KOREA) + datetime.timedelta(
                seconds=seconds
            )
            key = hashlib.md5(f"{day}/{n}".encode()).hexdigest().upper()
            rows.append(
                {
                    "mId": "tvivarepublica",
                    "transactionKey": key,
                    "paymentKey": f"tviva{day:%Y%m%d}{n:08d}pay",
                    "orderId": f"order-{day:%Y%m%d}-{n}",
                    "method": "카드",
                    "customerKey": None,
                    "useEscrow": False,
                    "receiptUrl": f"https://dashboard.tosspayments.com/receipt?key={key}",
                    "status": "DONE" if n % 20 else "CANCELED",
                    "transactionAt": at.isoformat(),
                    "currency": "KRW",
                    "amount": 1000 + (n * 37) % 500000,
                }
            )
        by_day[day.isoformat()] = rows
    return by_day


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    pages = {}  # (day, startingAfter or "", limit) -> bytes
    by_day = {}
    auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if self.headers.get("Authorization") != self.auth:
            return self.answer(401, b'{"code":"UNAUTHORIZED_KEY","message":"no"}')
        if url.path != "/v1/transactions":
            return self.answer(404, b'{"code":"NOT_FOUND","message":"no"}')
        day = query.get("startDate", "")[:10]
        limit = int(query.get("limit", "100"))
        ready = self.pages.get((day, query.get("startingAfter", ""), limit))
        if ready is not None:
            return self.answer(200, ready)
        rows = self.by_day.get(day, [])
        start = 0
        after = query.get("startingAfter")
        if after:
            keys = [row["transactionKey"] for row in rows]
            start = keys.index(after) + 1
        body = json.dumps(rows[start : start + limit], ensure_ascii=False).encode()
        self.answer(200, body)

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def timed(command, env, cwd):
    """Runs `command` under /usr/bin/time -v: (wall s, cpu s, peak RSS MiB, stdout)."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"engine failed:\n{result.stdout}\n{result.stderr}")
    field = lambda name: re.search(rf"{name}: (.+)", result.stderr).group(1).strip()
    wall = field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)")
    parts = [float(p) for p in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    cpu = float(field("User time \\(seconds\\)")) + float(field("System time \\(seconds\\)"))
    rss = int(field(r"Maximum resident set size \(kbytes\)")) / 1024
    return seconds, cpu, rss, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", default="target/release/engine")
    args = parser.parse_args()
    engine = os.path.abspath(args.engine)

    first_day = datetime.date(2026, 11, 1)
    print(f"generating {args.records:,} records over {args.days} days …", flush=True)
    Handler.by_day = generate(args.records, first_day, args.days)
    for day, rows in Handler.by_day.items():
        for start in range(0, len(rows) + 1, PAGE_SIZE):
            after = rows[start - 1]["transactionKey"] if start else ""
            page = rows[start : start + PAGE_SIZE]
            Handler.pages[(day, after, PAGE_SIZE)] = json.dumps(page, ensure_ascii=False).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    last_day = first_day + datetime.timedelta(days=args.days - 1)

    results = {"first pull": [], "unchanged pull": []}
    for round_number in range(1, args.rounds + 1):
        work = tempfile.mkdtemp(prefix="bench-toss-api-")
        with open(os.path.join(work, "pipeline.toml"), "w") as f:
            f.write(
                f"""[pipeline]
name = "bench"

[source]
type = "toss-api"
dataset = "transactions"
secret_key = "${{TOSS_SECRET_KEY}}"
endpoint = "{endpoint}"
page_size = {PAGE_SIZE}
refresh_days = 400

[[sinks]]
type = "parquet"
path = "lake"
"""
            )
        env = dict(os.environ, TOSS_SECRET_KEY=KEY)
        command = [engine, "-q", "run", "pipeline.toml", "--from", str(first_day), "--to", str(last_day)]
        for label in results:
            wall, cpu, rss, out = timed(command, env, work)
            if label == "first pull" and f"{args.records} rows loaded" not in out:
                sys.exit(f"expected {args.records} rows loaded:\n{out}")
            results[label].append((wall, cpu, rss))
            print(
                f"round {round_number} {label:15} wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                f"{args.records / wall:10,.0f} records/s  peak RSS {rss:6.1f} MiB",
                flush=True,
            )
        shutil.rmtree(work)
    print()
    print("| run | wall s (median) | CPU s (median) | records/s (median wall) | peak RSS MiB (max) |")
    print("|---|---|---|---|---|")
    for label, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        rss = max(r[2] for r in rows)
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {args.records / wall:,.0f} | {rss:.1f} |")
    server.shutdown()


if __name__ == "__main__":
    main()
