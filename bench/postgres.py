"""The Postgres sink against `psql \\copy`, same data, same server, same run.

    python3 bench/postgres.py [--rows 1000000] [--repeat 3] [--no-build]

Starts a throwaway PostgreSQL server (initdb + pg_ctl on a free port of 127.0.0.1, default
durability settings; as root it runs as user `postgres`), generates the seeded Toss file of
bench/run.py, and times, each --repeat times, the median reported:

- `psql \\copy`: the same records, already converted to CSV with the engine's 16 columns
  (conversion not timed), into an empty table with the engine's DDL and primary key;
- `engine`: `engine run` of a folder → Postgres pipeline (parser, state, rejects and all
  checks on) into the same empty table;
- `engine reload`: the same file loaded again into the full table (state forgotten), where the
  upsert finds every row unchanged — what a rerun of an unchanged day costs.

Prints wall time, rows/s and the ratio to `\\copy` (the median's, and each round's), and the
CPU seconds the client (engine or psql) and the server (the postmaster and every process it
started, ended ones included) spent on the run; the target is engine ÷ \\copy ≤ 1.
Standard library only (plus the machine's PostgreSQL server programs and psql).
"""
import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: input files, the timing launcher)

DDL = """
CREATE TABLE {table} (
    record_kind text, trxdate date, mid text, paytype text, "transaction" text, oid text,
    financecode text, financename text, buyerid text, amount bigint, useescrow boolean,
    occurred_at timestamptz, authnumber text, status text, source_file text, source_line bigint,
    PRIMARY KEY (record_kind, trxdate, mid, paytype, "transaction", oid)
)"""
PASSWORD = "bench-only-password"


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if not found:
        sys.exit("PostgreSQL's server programs are missing: run scripts/ensure-postgres.sh")
    return Path(found).parent


class Server:
    def __init__(self) -> None:
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.root = os.geteuid() == 0
        (self.dir / "pw").write_text(PASSWORD)
        if self.root:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tool("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A", "scram-sha-256",
                  "--pwfile", str(self.dir / "pw"), "-E", "UTF8", "--locale=C")
        self.tool("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c shared_buffers=512MB -c max_wal_size=4GB", "start")

    def tool(self, name: str, *args: str) -> None:
        argv = [str(self.bin / name), *args]
        if self.root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=self.dir)

    def url(self, db: str = "bench") -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "bench") -> str:
        out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url(db), "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server so far: the postmaster's own, those of the
        children it reaped (ended backends) and those of its live children."""
        tick = os.sysconf("SC_CLK_TCK")
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])

        def times(pid: int, children: bool) -> int:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()   # from field 3 (state) on
            used = int(fields[11]) + int(fields[12])         # utime, stime
            return used + (int(fields[13]) + int(fields[14]) if children else 0)

        total = times(postmaster, True)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == postmaster:
                    total += times(int(entry.name), False)
            except (OSError, ValueError):
                pass   # ended while looked at: counted among the reaped
        return total / tick

    def stop(self) -> None:
        try:
            self.tool("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def to_csv(source: Path, target: Path) -> None:
    """The Toss file as the engine's rows: 16 columns, NULL for empty optional fields."""
    name = source.name
    kind = "AUTH" if "_AUTH_" in name else "REV"
    day = name.rsplit("_", 1)[1][:8]
    trxdate = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    with open(source, encoding="utf-8", newline="") as src, open(target, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for number, line in enumerate(src, start=1):
            f = line.rstrip("\r\n").split(";")
            t = f[9]
            when = f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:14]}+09"
            writer.writerow([kind, trxdate, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7],
                             "t" if f[8] == "Y" else "f", when, f[10], f[11], name, number])


def engine_pipeline(folder: Path, inbox: Path, url: str) -> Path:
    path = folder / "pipeline.toml"
    path.write_text(f"""[pipeline]
name = "bench-postgres"
dates = "all"
state_dir = "{folder / 'state'}"

[source]
type = "dir"
path = "{inbox}"

[parser]
type = "toss"

[[sinks]]
type = "postgres"
url = "${{BENCH_DATABASE_URL}}"
table = "toss_engine"
""")
    return path


def timed(argv: list[str], folder: Path, env: dict[str, str], server: "Server") -> dict[str, float]:
    """Wall seconds of the command, its CPU seconds and the server's over the same span."""
    folder.mkdir(parents=True, exist_ok=True)
    old = dict(os.environ)
    os.environ.update(env)
    before = server.cpu_s()
    try:
        wall, cpu, _rss, code = bench.timed(argv, folder, folder, 3600)
    finally:
        os.environ.clear()
        os.environ.update(old)
    time.sleep(0.2)   # the backend ends just after its client; let the postmaster reap it
    server_cpu = server.cpu_s() - before
    if code != 0:
        sys.exit(f"{argv[0]} failed ({code}):\n{bench.tail(folder / 'stderr.txt')}{bench.tail(folder / 'stdout.txt')}")
    return {"wall_s": wall, "client_cpu_s": cpu or 0.0, "server_cpu_s": server_cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engine", default="target/release/engine")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "engine"], cwd=bench.REPO, check=True)
    engine = bench.resolve_engine(args.engine)
    data = bench.input_file(args.rows, "utf-8", 42, "AUTH")
    work = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    csv_path = work / "rows.csv"
    print("converting the file to CSV for \\copy ...", flush=True)
    to_csv(data.path, csv_path)
    bench.settle(data.path, 5)

    server = Server()
    try:
        server.psql("CREATE DATABASE bench", db="postgres")
        results: dict[str, list[dict[str, float]]] = {"psql \\copy": [], "engine": [], "engine reload": []}
        env = {"BENCH_DATABASE_URL": server.url(), "PGPASSWORD": PASSWORD}
        for n in range(args.repeat):
            server.psql("DROP TABLE IF EXISTS toss_copy; " + DDL.format(table="toss_copy") + "; CHECKPOINT")
            results["psql \\copy"].append(timed(
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", server.url(), "-c",
                 f"\\copy toss_copy FROM '{csv_path}' WITH (FORMAT csv)"], work / f"copy-{n}", env, server))
            assert server.psql("SELECT count(*) FROM toss_copy") == str(args.rows)

            run_dir = work / f"engine-{n}"
            run_dir.mkdir()
            pipeline = engine_pipeline(run_dir, data.dir, server.url())
            server.psql("DROP TABLE IF EXISTS toss_engine; DROP TABLE IF EXISTS engine_loads; "
                        + DDL.format(table="toss_engine") + "; CHECKPOINT")
            results["engine"].append(timed([str(engine), "run", str(pipeline)], run_dir / "first", env, server))
            assert server.psql("SELECT count(*) FROM toss_engine") == str(args.rows)
            same = server.psql("SELECT count(*) FROM toss_engine e JOIN toss_copy c USING "
                               "(record_kind, trxdate, mid, paytype, \"transaction\", oid) WHERE "
                               "(e.*)::text = (c.*)::text")
            assert same == str(args.rows), f"only {same} rows equal \\copy's"

            shutil.rmtree(run_dir / "state")
            server.psql("CHECKPOINT")
            results["engine reload"].append(timed([str(engine), "run", str(pipeline)], run_dir / "reload", env, server))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    def median(name: str, field: str) -> float:
        return statistics.median(run[field] for run in results[name])

    base = median("psql \\copy", "wall_s")
    print(f"\n{args.rows:,} rows ({data.bytes / 1e6:.0f} MB), median of {args.repeat}, PostgreSQL on 127.0.0.1\n")
    header = ("", "wall s", "rows/s", "÷ \\copy", "client CPU s", "server CPU s")
    print(f"{header[0]:16} {header[1]:>8} {header[2]:>10} {header[3]:>8} {header[4]:>13} {header[5]:>13}")
    table = {}
    for name, runs in results.items():
        wall = median(name, "wall_s")
        table[name] = {"wall_s": wall, "runs": runs, "rows_per_s": args.rows / wall, "ratio": wall / base,
                       "client_cpu_s": median(name, "client_cpu_s"),
                       "server_cpu_s": median(name, "server_cpu_s")}
        print(f"{name:16} {wall:8.2f} {args.rows / wall:10,.0f} {wall / base:8.2f} "
              f"{table[name]['client_cpu_s']:13.2f} {table[name]['server_cpu_s']:13.2f}")
    print("\neach round (interleaved: \\copy, engine, engine reload), wall s / client CPU s / server CPU s:")
    for n in range(args.repeat):
        copy, first = results["psql \\copy"][n], results["engine"][n]
        cells = "   ".join(f"{name} {results[name][n]['wall_s']:.2f}/{results[name][n]['client_cpu_s']:.2f}/"
                           f"{results[name][n]['server_cpu_s']:.2f}" for name in results)
        print(f"  round {n + 1}: {cells}   engine ÷ \\copy {first['wall_s'] / copy['wall_s']:.2f}")
    ratio = table["engine"]["ratio"]
    print(f"\nengine ÷ \\copy = {ratio:.2f} (target ≤ 1.0): {'met' if ratio <= 1.0 else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": args.rows, "results": table}, indent=1))
    return 0 if ratio <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
