#!/usr/bin/env python3
"""The lake's sinks side by side: rows/s and MB/s of one Toss file into the local Parquet lake,
the Parquet lake on S3, a local Delta table and a Delta table on S3; then the time of one Delta
commit with 1, 100 and 1,000 earlier commits in the table's log.

    python3 bench/lake.py [--rows 2000000] [--rounds 3] [--commits 1000] [--engine PATH]

The S3 server is moto on 127.0.0.1 (scripts/ensure-python.sh installs it), so "S3" measures the
engine's multipart uploads and commits through a real S3 protocol stack without a network's
latency. The contenders run interleaved, one run each per round, every run into an empty
table (or lake) so each does the same work; each is timed by bench/measure.py (wall, CPU =
user + sys, peak RSS). MB/s is the output's size over wall time.

Commit times come from the engine's own log: every Delta commit logs `commit_ms` and the table
version. One run loads --commits tiny units (one commit each) into a table on S3; the script
prints the median commit time around versions 1, 100 and 1,000.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "moto-venv", "bin")
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_REGION": "us-east-1",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(VENV, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    return server, endpoint


def bucket(endpoint, name):
    request = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    urllib.request.urlopen(request).read()


def pipeline(folder, inbox, sink):
    text = f"""[pipeline]
name = "bench"
dates = "all"
state_dir = "{folder}/state"

[source]
type = "dir"
path = "{inbox}"
settle_secs = 0

[parser]
type = "toss"

{sink}
"""
    path = os.path.join(folder, "pipeline.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def sinks(kind, folder, endpoint, n):
    s3 = f'endpoint = "{endpoint}"\nallow_http = true\n'
    return {
        "parquet-local": f'[[sinks]]\ntype = "parquet"\npath = "{folder}/lake"\n',
        "parquet-s3": f'[[sinks]]\ntype = "parquet"\npath = "s3://bench/p{n}"\n{s3}',
        "delta-local": f'[[sinks]]\ntype = "delta"\npath = "{folder}/delta"\n',
        "delta-s3": f'[[sinks]]\ntype = "delta"\npath = "s3://bench/d{n}"\n{s3}',
    }[kind]


def output_bytes(kind, folder, endpoint, n):
    if kind.endswith("local"):
        total = 0
        for top, _, files in os.walk(os.path.join(folder, "lake" if kind.startswith("parquet") else "delta")):
            total += sum(os.path.getsize(os.path.join(top, f)) for f in files if f.endswith(".parquet"))
        return total
    prefix = ("p" if kind.startswith("parquet") else "d") + str(n)
    listing = urllib.request.urlopen(f"{endpoint}/bench?list-type=2&prefix={prefix}/&max-keys=100000").read().decode()
    total = 0
    for contents in re.findall(r"<Contents>(.*?)</Contents>", listing, re.S):
        key = re.search(r"<Key>([^<]+)</Key>", contents).group(1)
        if key.endswith(".parquet") and "_delta_log" not in key:
            total += int(re.search(r"<Size>(\d+)</Size>", contents).group(1))
    return total


def measure(engine, pipeline_path, env):
    fd, result = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    code = subprocess.call(
        [sys.executable, "-I", "-S", os.path.join(ROOT, "bench", "measure.py"), result, engine, "-q", "run", pipeline_path],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    with open(result) as f:
        measured = json.load(f)
    os.unlink(result)
    if code != 0:
        sys.exit(f"the engine failed ({code}) on {pipeline_path}")
    return measured


def throughput(args, engine, endpoint, env, inbox):
    kinds = ["parquet-local", "parquet-s3", "delta-local", "delta-s3"]
    results = {kind: [] for kind in kinds}
    n = 0
    for round_ in range(1, args.rounds + 1):
        for kind in kinds:
            n += 1
            folder = tempfile.mkdtemp(prefix=f"lake-{kind}-")
            path = pipeline(folder, inbox, sinks(kind, folder, endpoint, n))
            measured = measure(engine, path, env)
            size = output_bytes(kind, folder, endpoint, n)
            measured["mb"] = size / 1e6
            results[kind].append(measured)
            print(
                f"round {round_} {kind:14} wall {measured['wall_s']:6.2f} s  cpu {measured['cpu_s']:6.2f} s  "
                f"{args.rows / measured['wall_s'] / 1e3:7.0f} k rows/s  {measured['mb'] / measured['wall_s']:6.1f} MB/s  "
                f"rss {measured['maxrss_kib'] / 1024:5.0f} MiB",
                flush=True,
            )
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nmedians of {args.rounds} rounds, {args.rows:,} rows:")
    print(f"{'sink':14} {'wall s':>7} {'cpu s':>7} {'k rows/s':>9} {'MB/s':>7} {'÷ local parquet (wall)':>24}")
    base = [m["wall_s"] for m in results["parquet-local"]]
    for kind in kinds:
        runs = results[kind]
        wall = statistics.median(m["wall_s"] for m in runs)
        cpu = statistics.median(m["cpu_s"] for m in runs)
        ratio = statistics.median(m["wall_s"] / b for m, b in zip(runs, base))
        mbs = statistics.median(m["mb"] / m["wall_s"] for m in runs)
        print(f"{kind:14} {wall:7.2f} {cpu:7.2f} {args.rows / wall / 1e3:9.0f} {mbs:7.1f} {ratio:24.2f}")


def commit_times(args, engine, endpoint, env):
    folder = tempfile.mkdtemp(prefix="lake-commits-")
    inbox = os.path.join(folder, "inbox")
    os.makedirs(inbox)
    day = "20070706"
    for n in range(args.commits + 1):
        mid = f"m{n:05d}"
        with open(os.path.join(inbox, f"{mid}_AUTH_{day}.dat"), "w") as f:
            f.write(f"{mid};SC0010;{mid}{n:019d};order_{n};11100;국민;buyer{n};1000;N;{day}120000;00000001;10\n")
    path = pipeline(folder, inbox, sinks("delta-s3", folder, endpoint, "commits"))
    log = os.path.join(folder, "engine.log")
    with open(log, "w") as out:
        subprocess.check_call([engine, "run", path], env={**env, "RUST_LOG": "engine=info"}, stdout=out, stderr=subprocess.STDOUT)
    by_version = {}
    for line in open(log, encoding="utf-8", errors="replace"):
        if "committed to the Delta table" not in line:
            continue
        version = re.search(r"version=(\d+)", line)
        took = re.search(r"commit_ms=(\d+)", line)
        if version and took:
            by_version[int(version.group(1))] = int(took.group(1))
    print(f"\nDelta commit time on S3 (moto), {len(by_version)} commits, one unit each:")
    for earlier in (1, 100, 1000):
        window = [by_version[v] for v in range(earlier - 2, earlier + 3) if v in by_version]
        if window:
            print(f"  with ~{earlier:>5} earlier commits: median {statistics.median(window):6.0f} ms (versions {earlier - 2}..{earlier + 2})")
    shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--engine", default=os.path.join(ROOT, "target", "release", "engine"))
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    server, endpoint = start_moto()
    try:
        bucket(endpoint, "bench")
        env = {**os.environ, **ENV, "RUST_LOG": "warn"}
        if not args.skip_throughput:
            data = tempfile.mkdtemp(prefix="lake-data-")
            subprocess.check_call(
                [sys.executable, os.path.join(ROOT, "bench", "gen_toss.py"), "--rows", str(args.rows), "--kind", "AUTH",
                 "--date", "20070706", "--mid", "toss", "--seed", "42", "--encoding", "utf-8", "--out", data],
                stdout=subprocess.DEVNULL,
            )
            throughput(args, args.engine, endpoint, env, data)
            shutil.rmtree(data, ignore_errors=True)
        commit_times(args, args.engine, endpoint, env)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
