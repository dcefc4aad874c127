#!/usr/bin/env python3
"""Benchmark: load a generated Toss file into Parquet and measure time and memory.

    python3 bench/run.py --rows 2000000 [--encoding utf-8|euc-kr|both] [--repeat 3]
                         [--engine target/release/engine] [--no-build] [--json FILE]

1. builds the engine (`cargo build --release -p engine`) unless --no-build;
2. generates `toss_AUTH_20070706.dat` with bench/gen_toss.py (seeded; cached in
   bench/out/data/ by rows + encoding + seed + kind, regenerated only when the generator
   changes);
3. for every contender and encoding, --repeat times: makes a fresh work folder under
   bench/out/runs/, writes what the contender needs there (a pipeline file for the
   engine), runs the command, and records wall time (time.perf_counter), the child's
   peak RSS and CPU time (os.wait4), exit code, the size of the .parquet files written,
   the rows they hold (read from the Parquet footers) and the rejected lines;
4. prints one table row per contender and encoding (median wall time over the repeats,
   highest peak RSS) and a last line saying whether the engine's peak RSS stayed under
   the memory goal (400 MB).

Contenders are the things being timed on the same input file. Each one is a `Contender`
in CONTENDERS below: a name, a function that prepares the work folder and returns the
command to run, and a function that checks and measures what the command wrote. To add
one (the engine with a WebAssembly transform, DuckDB or polars from bench/.venv, ...),
write those two functions and append to CONTENDERS; it is timed, checked and reported
the same way. `--contenders a,b` picks some; `--list` shows them.

Python 3.11 standard library only. Exit code 0 when every run succeeded and passed its
checks, 1 otherwise, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
sys.dont_write_bytecode = True   # no bench/__pycache__ next to the sources
sys.path.insert(0, str(BENCH))
import gen_toss  # noqa: E402

RSS_GOAL_MB = 200          # decimal megabytes: 200,000,000 bytes (the target)
DATE = "20070706"          # business date of the generated file
MID = "toss"


# ---- input --------------------------------------------------------------------------

@dataclasses.dataclass
class Input:
    path: Path             # the .dat file
    dir: Path              # folder holding only that file (a `dir` source)
    rows: int
    encoding: str
    kind: str
    bytes: int
    gen_seconds: Optional[float]   # None when it came from the cache


def input_file(rows: int, encoding: str, seed: int, kind: str) -> Input:
    """The generated file for these parameters, from the cache or freshly written."""
    folder = OUT / "data" / f"{kind.lower()}-{rows}rows-{encoding}-seed{seed}"
    path = folder / gen_toss.file_name(MID, kind, DATE)
    meta_path = folder.with_name(folder.name + ".json")   # beside, so the folder holds only the .dat
    gen_hash = hashlib.sha256((BENCH / "gen_toss.py").read_bytes()).hexdigest()
    want = {"rows": rows, "encoding": encoding, "seed": seed, "kind": kind, "date": DATE,
            "mid": MID, "generator_sha256": gen_hash}
    try:
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and path.stat().st_size == meta["bytes"]:
            print(f"input: {path.relative_to(REPO)} (cached, {meta['bytes'] / 1e6:.1f} MB)", flush=True)
            return Input(path, folder, rows, encoding, kind, meta["bytes"], None)
    except (OSError, ValueError, KeyError):
        pass
    meta_path.unlink(missing_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    # generate into a temporary folder so the source folder never holds anything else
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    print(f"input: generating {rows:,} {kind} rows ({encoding}, seed {seed}) ...", end=" ", flush=True)
    t0 = time.perf_counter()
    gen_toss.generate(rows, kind, DATE, MID, seed, encoding, str(tmp))
    secs = time.perf_counter() - t0
    size = (tmp / path.name).stat().st_size
    tmp.rename(folder)
    meta_path.write_text(json.dumps({**want, "bytes": size, "gen_seconds": round(secs, 2)}, indent=1))
    print(f"{size / 1e6:.1f} MB in {secs:.1f} s", flush=True)
    return Input(path, folder, rows, encoding, kind, size, secs)


# ---- contenders ---------------------------------------------------------------------

@dataclasses.dataclass
class Ctx:
    """What a contender gets for one timed run."""
    args: argparse.Namespace
    engine: Path
    input: Input
    work: Path             # fresh, empty folder for this run
    threads: int           # cores this run may use (it is pinned to that many with taskset)


@dataclasses.dataclass
class Output:
    bytes: int             # size of what was written (e.g. sum of .parquet files)
    files: int
    rows: Optional[int]    # rows written, when it can be counted
    rejects: Optional[int] = None
    problems: list[str] = dataclasses.field(default_factory=list)   # failed checks


@dataclasses.dataclass
class Contender:
    name: str
    description: str
    # prepares ctx.work and returns the command (argv) to time
    command: Callable[[Ctx], list[str]]
    # after a run that exited 0: checks and measures what the command wrote
    output: Callable[[Ctx], Output]
    # None when it can run, else the reason it is skipped
    available: Callable[[argparse.Namespace, Path], Optional[str]] = lambda args, engine: None
    # does the peak-RSS goal apply to it (the engine: yes; DuckDB/polars baselines: no)
    rss_goal: bool = True
    # part of the default set (--contenders overrides)
    default: bool = True
    # the input encodings it can read (DuckDB and polars read UTF-8 only)
    encodings: tuple[str, ...] = ("utf-8", "euc-kr")
    # environment for the command (e.g. its thread count), from the run's context
    env: Callable[[Ctx], dict[str, str]] = lambda ctx: {}


def toml_str(s: str | Path) -> str:
    return json.dumps(str(s), ensure_ascii=False)   # a JSON string is a valid TOML basic string


def engine_pipeline(ctx: Ctx, extra: str = "") -> Path:
    """Write the pipeline file for a dir -> toss -> [transforms] -> parquet run."""
    w = ctx.work
    text = f"""[pipeline]
name = "bench"
dates = "all"
state_dir = {toml_str(w / "state")}

[source]
type = "dir"
path = {toml_str(ctx.input.dir)}

[parser]
type = "toss"
{extra}
[[sinks]]
type = "parquet"
path = {toml_str(w / "lake")}
zstd_level = {ctx.args.zstd_level}
"""
    p = w / "pipeline.toml"
    p.write_text(text, encoding="utf-8")
    return p


def engine_available(args: argparse.Namespace, engine: Path) -> Optional[str]:
    if not engine.is_file() or not os.access(engine, os.X_OK):
        return f"no engine binary at {engine}"
    return None


def engine_env(ctx: Ctx) -> dict[str, str]:
    return {"ENGINE_THREADS": str(ctx.threads)}


def engine_cmd(ctx: Ctx) -> list[str]:
    return [str(ctx.engine), "run", str(engine_pipeline(ctx))]


def engine_output(ctx: Ctx) -> Output:
    out = parquet_output(ctx.work / "lake")
    out.rejects = count_jsonl(ctx.work / "state" / "rejects")
    if out.rejects:
        out.problems.append(f"{out.rejects} rejected lines (the generated file has none)")
    return out


PLUGIN_DIR = REPO / "target/plugins/wasm32-wasip2/release"


def plugin_missing(name: str) -> Optional[str]:
    path = PLUGIN_DIR / f"{name}.wasm"
    return None if path.is_file() else f"no plugin at {path} (cargo build --release -p engine builds it)"


def plugin_cmd(ctx: Ctx, plugin: str, config: str, stateless: bool = True) -> list[str]:
    """A pipeline with one wasm transform, `stateless = true` as for every example plugin (one
    instance per engine thread) unless `stateless` is false; the plugin is compiled (and cached in
    the run's state_dir) by an untimed `engine validate`, so the timed run measures a cached
    start. An earlier engine (under --before) that does not know `stateless` runs the plugin as
    it could, on one instance."""
    for stateless in (("stateless = true\n", "") if stateless else ("",)):
        transform = (f'[[transforms]]\ntype = "wasm"\nname = "{plugin}"\n'
                     f'module = {toml_str(PLUGIN_DIR / (plugin + ".wasm"))}\n{stateless}{config}\n')
        pipeline = engine_pipeline(ctx, extra=transform)
        checked = subprocess.run([str(ctx.engine), "validate", str(pipeline), "-q"], cwd=ctx.work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if checked.returncode == 0:
            return [str(ctx.engine), "run", str(pipeline)]
        if not (stateless and "stateless" in checked.stderr):
            break
    raise RuntimeError(f"{ctx.engine} validate {pipeline}: {checked.stderr.strip()}")


def plugin_contender(name: str, plugin: str, config: str, stateless: bool) -> Contender:
    """The engine's pipeline through one example plugin: `engine+NAME` with `stateless = true`
    (one instance per engine thread), in the default set; `engine+NAME/serial` without it (one
    instance, called in order), opt-in."""
    return Contender(
        name=f"engine+{name}" + ("" if stateless else "/serial"),
        description=(f"same pipeline through the {plugin} WebAssembly plugin (compiled plugin cached), "
                     + ("stateless = true" if stateless else "one instance called in order")),
        command=lambda ctx: plugin_cmd(ctx, plugin, config, stateless=stateless),
        output=engine_output,
        available=lambda args, engine: engine_available(args, engine) or plugin_missing(plugin),
        env=engine_env,
        default=stateless,
    )


CONTENDERS: list[Contender] = [
    Contender(
        name="engine",
        description="engine run: dir source -> toss parser (encoding auto) -> parquet sink",
        command=engine_cmd,
        output=engine_output,
        available=engine_available,
        env=engine_env,
    ),
    *(plugin_contender(name, plugin, config, stateless)
      for stateless in (True, False)
      for name, plugin, config in (
          ("identity", "identity", ""),
          ("mapping", "merchant_mapping", "[transforms.config]\nfee_rate = 0.025\n"))),
    Contender(
        name="duckdb",
        description="DuckDB read_csv (explicit schema) -> COPY ... TO zstd Parquet at --zstd-level (bench/peers/duckdb_load.py)",
        command=lambda ctx: peer_cmd(ctx, "duckdb_load.py"),
        output=lambda ctx: parquet_output(ctx.work / "lake"),
        available=lambda args, engine: venv_missing(),
        rss_goal=False,
        encodings=("utf-8",),
    ),
    Contender(
        name="polars",
        description="polars scan_csv (explicit schema) -> sink_parquet zstd at --zstd-level (bench/peers/polars_load.py)",
        command=lambda ctx: peer_cmd(ctx, "polars_load.py"),
        output=lambda ctx: parquet_output(ctx.work / "lake"),
        available=lambda args, engine: venv_missing(),
        rss_goal=False,
        encodings=("utf-8",),
    ),
    Contender(
        name="duckdb@own-level",
        description="DuckDB as above at its own default zstd level (3)",
        command=lambda ctx: peer_cmd(ctx, "duckdb_load.py", own_level=True),
        output=lambda ctx: parquet_output(ctx.work / "lake"),
        available=lambda args, engine: venv_missing(),
        rss_goal=False,
        default=False,
        encodings=("utf-8",),
    ),
    Contender(
        name="polars@own-level",
        description="polars as above at its own default zstd level (3)",
        command=lambda ctx: peer_cmd(ctx, "polars_load.py", own_level=True),
        output=lambda ctx: parquet_output(ctx.work / "lake"),
        available=lambda args, engine: venv_missing(),
        rss_goal=False,
        default=False,
        encodings=("utf-8",),
    ),
]

# ---- peers (DuckDB, polars) -----------------------------------------------------------

VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
PEERS = {c.name for c in CONTENDERS if not c.rss_goal}
# The peers the engine is compared with, like for like (same zstd level).
BASELINES = ("duckdb", "polars")


def venv_missing() -> Optional[str]:
    return None if VENV_PYTHON.exists() else f"no {VENV} (run without --no-venv to make it)"


def ensure_venv() -> None:
    """Make bench/.venv with the pinned peers of bench/requirements.txt, once."""
    req = BENCH / "requirements.txt"
    stamp = VENV / ".requirements"
    if VENV_PYTHON.exists() and stamp.exists() and stamp.read_text() == req.read_text():
        return
    print(f"venv: installing {', '.join(l.strip() for l in req.read_text().splitlines() if l.strip() and not l.startswith('#'))} "
          f"into {VENV.relative_to(REPO)} ...", flush=True)
    if not VENV_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "-r", str(req)], check=True)
    stamp.write_text(req.read_text())


def peer_cmd(ctx: Ctx, script: str, own_level: bool = False) -> list[str]:
    """A peer's command: at the engine's zstd level (like for like), or at its own default."""
    (ctx.work / "lake").mkdir()
    argv = [str(VENV_PYTHON), str(BENCH / "peers" / script), str(ctx.input.path),
            str(ctx.work / "lake" / "out.parquet"), str(ctx.threads)]
    return argv if own_level else argv + [str(ctx.args.zstd_level)]


# ---- output checks --------------------------------------------------------------------

def parquet_output(lake: Path) -> Output:
    """Sum and count the .parquet files under `lake` and the rows their footers declare."""
    files = sorted(p for p in lake.rglob("*.parquet") if p.is_file()) if lake.is_dir() else []
    out = Output(bytes=sum(p.stat().st_size for p in files), files=len(files), rows=0)
    if not files:
        out.rows = None
        out.problems.append(f"no .parquet files under {lake}")
        return out
    for p in files:
        try:
            out.rows += parquet_num_rows(p)
        except Exception as e:  # noqa: BLE001 - a footer we cannot read is reported, not fatal
            out.problems.append(f"cannot read the Parquet footer of {p}: {e}")
            out.rows = None
            break
    return out


def count_jsonl(folder: Path) -> int:
    n = 0
    if folder.is_dir():
        for p in folder.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    n += sum(1 for line in f if line.strip())
    return n


def parquet_num_rows(path: Path) -> int:
    """FileMetaData.num_rows from a Parquet footer (Thrift compact protocol, field 3)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        if size < 12:
            raise ValueError("too small to be Parquet")
        f.seek(size - 8)
        tail = f.read(8)
        if tail[4:] != b"PAR1":
            raise ValueError("no PAR1 magic at the end")
        mlen = int.from_bytes(tail[:4], "little")
        if mlen > size - 12:
            raise ValueError("footer length out of range")
        f.seek(size - 8 - mlen)
        buf = f.read(mlen)
    r = _Compact(buf)
    fid = 0
    while True:
        b = r.byte()
        if b == 0:
            raise ValueError("num_rows missing from the footer")
        delta, ftype = b >> 4, b & 0x0F
        fid = fid + delta if delta else r.zigzag(r.varint())
        if fid == 3 and ftype == 6:
            return r.zigzag(r.varint())
        r.skip(ftype)


class _Compact:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    @staticmethod
    def zigzag(n: int) -> int:
        return (n >> 1) ^ -(n & 1)

    def skip(self, t: int) -> None:
        if t in (1, 2):             # bool true / false, value in the type
            return
        if t == 3:                  # byte
            self.pos += 1
        elif t in (4, 5, 6):        # i16, i32, i64
            self.varint()
        elif t == 7:                # double
            self.pos += 8
        elif t == 8:                # binary / string
            n = self.varint()       # read the length before moving pos
            self.pos += n
        elif t in (9, 10):          # list, set
            h = self.byte()
            n, et = h >> 4, h & 0x0F
            if n == 15:
                n = self.varint()
            for _ in range(n):
                if et in (1, 2):
                    self.pos += 1   # bools in a collection take one byte each
                else:
                    self.skip(et)
        elif t == 11:               # map
            n = self.varint()
            if n:
                kv = self.byte()
                for _ in range(n):
                    for et in (kv >> 4, kv & 0x0F):
                        if et in (1, 2):
                            self.pos += 1
                        else:
                            self.skip(et)
        elif t == 12:               # struct
            while True:
                b = self.byte()
                if b == 0:
                    return
                if not b >> 4:
                    self.varint()   # long-form field id
                self.skip(b & 0x0F)
        else:
            raise ValueError(f"unknown Thrift compact type {t}")


# ---- timing ---------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    wall_s: float
    cpu_s: Optional[float]
    peak_rss_kib: Optional[int]
    exit_code: int
    work: str
    output: Optional[Output]
    problems: list[str]


def timed(argv: list[str], cwd: Path, log: Path, timeout: float,
          env: Optional[dict[str, str]] = None) -> tuple[float, Optional[float], Optional[int], int]:
    """Run argv; return (wall s, user+sys CPU s, peak RSS KiB, exit code); None = not measured.

    The command runs under bench/measure.py, a small separate interpreter that forks it,
    times it with time.perf_counter and reads its peak RSS with os.wait4: a child forked
    straight from this (larger) process would inherit this process's RSS as its ru_maxrss.
    """
    result = log / "measure.json"
    launcher = [sys.executable, "-I", "-S", str(BENCH / "measure.py"), str(result)]
    with open(log / "stdout.txt", "wb") as out, open(log / "stderr.txt", "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(launcher + argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True, env={**os.environ, **(env or {})})

        def kill() -> None:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # the launcher and the command share the group
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            p.wait()
        except KeyboardInterrupt:
            kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        outer_wall = time.perf_counter() - t0
    try:
        m = json.loads(result.read_text())
        return m["wall_s"], m["cpu_s"], m["maxrss_kib"], m["exit_code"]
    except (OSError, ValueError, KeyError):
        # the launcher itself died (killed on --timeout): no measurement of the command
        return outer_wall, None, None, p.returncode


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + l for l in lines[-n:])


def pinned(argv: list[str], threads: int) -> list[str]:
    """argv limited to the first `threads` cores of this process's set (taskset), so that a
    1-thread run of any tool really has one core, background threads included."""
    cores = sorted(os.sched_getaffinity(0))
    if threads >= len(cores):
        return argv
    return ["taskset", "--cpu-list", ",".join(str(c) for c in cores[:threads])] + argv


def run_once(c: Contender, ctx: Ctx, timeout: float) -> Run:
    argv = pinned(c.command(ctx), ctx.threads)
    wall, cpu, rss, code = timed(argv, ctx.work, ctx.work, timeout, c.env(ctx))
    problems: list[str] = []
    out = None
    if code != 0:
        why = f"killed after --timeout {timeout:g} s" if code == -signal.SIGKILL else f"exit code {code}"
        problems.append(why)
        print(f"FAILED ({why})\n    command: {' '.join(argv)}\n    stderr (last lines):\n"
              f"{tail(ctx.work / 'stderr.txt')}", flush=True)
    else:
        out = c.output(ctx)
        problems += out.problems
        if out.rows is not None and out.rows != ctx.input.rows:
            problems.append(f"{out.rows:,} rows written, {ctx.input.rows:,} expected")
    return Run(wall, cpu, rss, code, str(ctx.work), out, problems)


# ---- report ---------------------------------------------------------------------------

def summarize(c: Contender, inp: Input, threads: int, runs: list[Run]) -> dict:
    ok = [r for r in runs if not r.problems]
    walls = [r.wall_s for r in runs]
    med = statistics.median(walls)
    cpus = [r.cpu_s for r in runs if r.cpu_s is not None]
    rsss = [r.peak_rss_kib for r in runs if r.peak_rss_kib is not None]
    last_out = next((r.output for r in reversed(runs) if r.output), None)
    in_mb = inp.bytes / 1e6
    return {
        "contender": c.name,
        "description": c.description,
        "threads": threads,
        "encoding": inp.encoding,
        "kind": inp.kind,
        "rows": inp.rows,
        "input_bytes": inp.bytes,
        "input_mb": round(in_mb, 3),
        "repeats": len(runs),
        "median_wall_s": round(med, 4),
        "min_wall_s": round(min(walls), 4),
        "rows_per_s": round(inp.rows / med) if med else None,
        "mb_per_s": round(in_mb / med, 2) if med else None,
        "median_cpu_s": round(statistics.median(cpus), 3) if cpus else None,
        "peak_rss_mib": round(max(rsss) / 1024, 1) if rsss else None,
        "peak_rss_bytes": max(rsss) * 1024 if rsss else None,
        "output_bytes": last_out.bytes if last_out else None,
        "output_mb": round(last_out.bytes / 1e6, 3) if last_out else None,
        "output_files": last_out.files if last_out else None,
        "rows_out": last_out.rows if last_out else None,
        "rejects": last_out.rejects if last_out else None,
        "ok": len(ok) == len(runs),
        "rss_goal": c.rss_goal,
        "runs": [{"wall_s": round(r.wall_s, 4), "cpu_s": None if r.cpu_s is None else round(r.cpu_s, 3),
                  "peak_rss_mib": None if r.peak_rss_kib is None else round(r.peak_rss_kib / 1024, 1),
                  "exit_code": r.exit_code,
                  "output_bytes": r.output.bytes if r.output else None,
                  "rows_out": r.output.rows if r.output else None,
                  "problems": r.problems, "work": r.work} for r in runs],
    }


def same_run(rows: list[dict], contender: str, like: dict, encoding: Optional[str] = None) -> Optional[dict]:
    """The result of `contender` at the same rows and threads as `like` (and its encoding,
    unless another is named), when it ran and passed its checks."""
    enc = encoding or like["encoding"]
    for r in rows:
        if (r["contender"] == contender and r["rows"] == like["rows"] and r["threads"] == like["threads"]
                and r["encoding"] == enc and r["ok"]):
            return r
    return None


def round_ratios(r: dict, base: Optional[dict], measure: str) -> list[float]:
    """`measure` (wall_s or cpu_s) of r over that of base, round by round: the contenders run
    interleaved, one run each per round, so a round's two runs saw the same machine."""
    if not base or not r["ok"]:
        return []
    pairs = zip(r["runs"], base["runs"])
    return [round(a[measure] / b[measure], 3) for a, b in pairs
            if a.get(measure) and b.get(measure)]


def ratio(r: dict, base: Optional[dict]) -> Optional[float]:
    """The median of the per-round wall-time ratios of r over base."""
    rounds = round_ratios(r, base, "wall_s")
    return statistics.median(rounds) if rounds else None


def add_ratios(rows: list[dict]) -> None:
    """÷duckdb and ÷polars (wall and CPU): the median of the per-round ratios against the peer
    on the UTF-8 file with the same threads (the peers read UTF-8 only, so an EUC-KR engine run
    is compared with the peers' UTF-8 run)."""
    for r in rows:
        for peer in BASELINES:
            base = same_run(rows, peer, r, "utf-8")
            wall = round_ratios(r, base, "wall_s")
            cpu = round_ratios(r, base, "cpu_s")
            r[f"vs_{peer}"] = round(statistics.median(wall), 3) if wall else None
            r[f"vs_{peer}_cpu"] = round(statistics.median(cpu), 3) if cpu else None
            r[f"vs_{peer}_rounds"] = wall
            r[f"vs_{peer}_cpu_rounds"] = cpu


def fmt_table(rows: list[dict]) -> str:
    head = ["contender", "threads", "encoding", "rows", "input MB", "median wall s", "rows/s", "MB/s",
            "peak RSS MiB", "output MB", "CPU s", "÷duckdb", "÷duckdb CPU", "÷polars", "÷polars CPU",
            "check"]
    body = []
    q = lambda x: "-" if x is None else f"{x:.2f}"
    for r in rows:
        body.append([
            r["contender"], str(r["threads"]), r["encoding"], f"{r['rows']:,}", f"{r['input_mb']:.2f}",
            f"{r['median_wall_s']:.2f}", f"{r['rows_per_s']:,}" if r["rows_per_s"] else "-",
            f"{r['mb_per_s']:.1f}" if r["mb_per_s"] else "-",
            f"{r['peak_rss_mib']:.1f}" if r["peak_rss_mib"] is not None else "-",
            f"{r['output_mb']:.2f}" if r["output_mb"] is not None else "-",
            f"{r['median_cpu_s']:.2f}" if r["median_cpu_s"] is not None else "-",
            q(r.get("vs_duckdb")), q(r.get("vs_duckdb_cpu")), q(r.get("vs_polars")), q(r.get("vs_polars_cpu")),
            "ok" if r["ok"] else "FAILED",
        ])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    left = {0, 2, 15}
    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


# The targets of the performance issue, each judged on ratios measured in this run (like for
# like: every contender at the same zstd level).
WALL_VS_DUCKDB = {"all": 0.55, 1: 0.60}
WALL_VS_POLARS = {"all": 0.70}
EUC_KR_OVER_UTF8 = 1.10
IDENTITY_OVER_ENGINE = {"all": 1.10, 1: 1.15}
MAPPING_OVER_ENGINE = {"all": 1.25}
RSS_GOAL_MIB = {"engine": 150, "with a plugin": 170}
RSS_FLAT = 0.10


def limit_for(limits: dict, threads: int, all_threads: int) -> Optional[float]:
    """The target for a thread count: the `all` entry with every core, else the count's own."""
    return limits["all"] if threads == all_threads and "all" in limits else limits.get(threads)


def verdict(ok: Optional[bool], text: str) -> str:
    mark = "n/a " if ok is None else ("MET " if ok else "MISS")
    return f"  [{mark}] {text}"


def targets(rows: list[dict], rss_goal_mb: float, all_threads: int, main_rows: int) -> list[str]:
    """One line per target of the issue, MET or MISS with the measured figure."""
    out = []
    engines = [r for r in rows if r["contender"] == "engine" and r["ok"]]
    for r in engines:
        if r["encoding"] != "utf-8":
            continue
        t = r["threads"]
        limit = limit_for(WALL_VS_DUCKDB, t, all_threads)
        if limit is not None and r.get("vs_duckdb") is not None:
            out.append(verdict(r["vs_duckdb"] <= limit,
                               f"engine ÷ DuckDB, {t} thread(s), {r['rows']:,} rows: {r['vs_duckdb']:.2f} (≤ {limit})"))
        limit = limit_for(WALL_VS_POLARS, t, all_threads)
        if limit is not None and r.get("vs_polars") is not None:
            out.append(verdict(r["vs_polars"] <= limit,
                               f"engine ÷ polars, {t} thread(s): {r['vs_polars']:.2f} (≤ {limit})"))
    for r in engines:
        if r["encoding"] != "euc-kr":
            continue
        q = ratio(r, same_run(rows, "engine", r, "utf-8"))
        if q is not None:
            out.append(verdict(q <= EUC_KR_OVER_UTF8,
                               f"EUC-KR ÷ UTF-8, {r['threads']} thread(s): {q:.2f} (≤ {EUC_KR_OVER_UTF8})"))
    for name, plugin, limits in (("engine+identity", "identity", IDENTITY_OVER_ENGINE),
                                 ("engine+mapping", "merchant-mapping", MAPPING_OVER_ENGINE)):
        for r in rows:
            limit = limit_for(limits, r["threads"], all_threads)
            if r["contender"] != name or not r["ok"] or limit is None:
                continue
            q = ratio(r, same_run(rows, "engine", r))
            if q is not None:
                out.append(verdict(q <= limit,
                                   f"{plugin} plugin ÷ no plugin, {r['threads']} thread(s), {r['encoding']}: "
                                   f"{q:.2f} (≤ {limit})"))
    # The engine alone, and the pipelines through a plugin (whose instance memory adds to it).
    for label, group in (("engine", lambda r: r["contender"] == "engine"),
                         ("with a plugin", lambda r: r["contender"] in ("engine+identity", "engine+mapping"))):
        judged = [r for r in rows if r["rss_goal"] and r["peak_rss_bytes"] is not None and group(r)]
        if judged:
            worst = max(judged, key=lambda r: r["peak_rss_bytes"])
            b = worst["peak_rss_bytes"]
            goal = min(RSS_GOAL_MIB[label], rss_goal_mb * 1e6 / 2**20)
            out.append(verdict(b <= goal * 2**20,
                               f"peak RSS, {label}: highest {b / 2**20:.1f} MiB (≤ {goal:g} MiB; "
                               f"{worst['contender']}, {worst['threads']} thread(s), {worst['encoding']}, "
                               f"{worst['rows']:,} rows)"))
    # Like with like: the engine with all cores on the UTF-8 file, at every size.
    scaled = [r for r in engines if r["threads"] == all_threads and r["encoding"] == "utf-8"]
    sizes = sorted({r["rows"] for r in scaled})
    if len(sizes) > 1:
        rss = {n: max(r["peak_rss_bytes"] for r in scaled if r["rows"] == n) for n in sizes}
        base = rss.get(main_rows) or rss[sizes[-1]]
        worst = max(abs(v - base) / base for v in rss.values())
        out.append(verdict(worst <= RSS_FLAT,
                           "engine peak RSS by rows: " + ", ".join(f"{n:,}: {rss[n] / 1e6:.1f} MB" for n in sizes)
                           + f" (at most {worst * 100:.0f}% off the {main_rows:,}-row figure; goal ±{RSS_FLAT * 100:.0f}%)"))
    for r in engines:
        d = same_run(rows, "duckdb", r, "utf-8")
        if r["encoding"] == "utf-8" and d and r["output_bytes"] and d["output_bytes"]:
            out.append(verdict(r["output_bytes"] <= d["output_bytes"],
                               f"Parquet size, {r['threads']} thread(s): engine {r['output_bytes'] / 1e6:.1f} MB, "
                               f"DuckDB {d['output_bytes'] / 1e6:.1f} MB"))
    if any(not r["ok"] for r in rows):
        out.append("  some runs FAILED: their figures are not valid measurements")
    return out


def before_twin(c: Contender, before: Path) -> Optional[Contender]:
    """The same engine contender run with an earlier binary (`--before`); None for a peer."""
    if c.name in PEERS:
        return None
    return dataclasses.replace(
        c, name=f"{c.name}@before", description=f"{c.description}, with {before}",
        command=lambda ctx: c.command(dataclasses.replace(ctx, engine=before)))


def before_after(rows: list[dict]) -> list[str]:
    """For every contender run with --before too: after ÷ before, wall and CPU, per round and
    their median."""
    out = []
    for r in rows:
        base = next((b for b in rows if b["contender"] == r["contender"] + "@before"
                     and b["rows"] == r["rows"] and b["threads"] == r["threads"]
                     and b["encoding"] == r["encoding"]), None)
        wall, cpu = round_ratios(r, base, "wall_s"), round_ratios(r, base, "cpu_s")
        if wall and cpu:
            out.append(f"  {r['contender']}/{r['threads']}t/{r['encoding']}: wall {statistics.median(wall):.2f} "
                       f"{wall}, CPU {statistics.median(cpu):.2f} {cpu}; peak RSS {base['peak_rss_mib']} -> "
                       f"{r['peak_rss_mib']} MiB")
    return out


# ---- main -----------------------------------------------------------------------------

def git_rev() -> Optional[str]:
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return r.stdout.strip() or None
    except OSError:
        return None


def settle(path: Path, secs: float) -> None:
    """Wait until `path` was last modified at least `secs` ago.

    The dir source treats a file modified within its settle window (2 s by default) as
    possibly still being written and looks at it twice, sleeping in between. A file just
    generated would make the first run pay that sleep; a real day file is long settled.
    """
    age = time.time() - path.stat().st_mtime
    if age < secs:
        print(f"input: waiting {secs - age:.1f} s so it is older than the source's settle window", flush=True)
        time.sleep(secs - age)


def resolve_engine(p: str) -> Path:
    path = Path(p)
    if not path.is_absolute() and not path.exists() and (REPO / path).exists():
        path = REPO / path
    return path.resolve() if path.exists() else (path if path.is_absolute() else (Path.cwd() / path))


def parse_threads(text: str, cores: int) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        n = cores if part == "all" else int(part)
        if n < 1:
            raise ValueError(part)
        if n not in out:
            out.append(min(n, cores))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Time `engine run`, DuckDB and polars loading a generated Toss file into Parquet.",
        epilog="Example: python3 bench/run.py --encoding both")
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows in the generated file (default 5,000,000)")
    ap.add_argument("--encoding", choices=["utf-8", "euc-kr", "both"], default="both")
    ap.add_argument("--threads", default="all,1",
                    help="comma-separated thread counts to run every contender with; `all` = every core (default all,1)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per contender, threads and encoding (median is reported)")
    ap.add_argument("--engine", default="target/release/engine", help="engine binary (relative: to the current or repo folder)")
    ap.add_argument("--before", metavar="PATH",
                    help="an earlier engine binary: each engine contender also runs with it (NAME@before), "
                         "interleaved, and the after ÷ before ratios are printed per round")
    ap.add_argument("--no-build", action="store_true", help="skip `cargo build --release -p engine`")
    ap.add_argument("--no-venv", action="store_true", help="do not make bench/.venv (the peers are skipped without it)")
    ap.add_argument("--zstd-level", type=int, default=1,
                    help="zstd level of every contender's Parquet, the engine's and the peers' alike "
                         "(default 1, the engine's default); duckdb@own-level and polars@own-level "
                         "(opt-in) run the peers at their own default instead")
    ap.add_argument("--seed", type=int, default=42, help="generator seed")
    ap.add_argument("--kind", choices=["AUTH", "REV"], default="AUTH", help="file kind to generate")
    ap.add_argument("--contenders", help="comma-separated names (default: every default contender)")
    ap.add_argument("--list", action="store_true", help="list the contenders and exit")
    ap.add_argument("--scale-rows", default="",
                    help="also run the engine (all cores, UTF-8) on files of these row counts, e.g. "
                         "1000000,10000000, to show that its memory does not grow with the file")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds before a run is killed")
    ap.add_argument("--rss-goal-mb", type=float, default=RSS_GOAL_MB, help="memory goal in MB (10^6 bytes)")
    ap.add_argument("--settle-secs", type=float, default=5,
                    help="before timing, wait until the input is this old (the dir source waits on fresher files)")
    ap.add_argument("--keep", action="store_true", help="keep every run's work folder (default: keep only the last repeat's)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    if args.list:
        for c in CONTENDERS:
            print(f"{c.name:22} {'default' if c.default else 'opt-in ':8} {c.description}")
        return 0
    if args.rows < 1 or args.repeat < 1:
        ap.error("--rows and --repeat must be at least 1")
    cores = len(os.sched_getaffinity(0))
    try:
        thread_counts = parse_threads(args.threads, cores)
        scale_rows = [int(x) for x in args.scale_rows.split(",") if x.strip()]
    except ValueError:
        ap.error("--threads takes counts >= 1 or `all`; --scale-rows takes row counts")
    by_name = {c.name: c for c in CONTENDERS}
    if args.contenders:
        names = [n.strip() for n in args.contenders.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            ap.error(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
        chosen = [by_name[n] for n in names]
    else:
        chosen = [c for c in CONTENDERS if c.default]
    encodings = ["utf-8", "euc-kr"] if args.encoding == "both" else [args.encoding]
    engine = resolve_engine(args.engine)

    if not args.no_build:
        cmd = ["cargo", "build", "--release", "-p", "engine"]
        print("build: " + " ".join(cmd), flush=True)
        r = subprocess.run(cmd, cwd=REPO)
        if r.returncode != 0:
            print(f"build failed (exit {r.returncode})", file=sys.stderr)
            return 1
    if not args.no_venv and any(c.name in PEERS for c in chosen):
        ensure_venv()

    runnable = []
    for c in chosen:
        why = c.available(args, engine)
        if why:
            print(f"skip {c.name}: {why}", file=sys.stderr)
        else:
            runnable.append(c)
    if not runnable:
        print("nothing to run", file=sys.stderr)
        return 1
    if args.before:
        before = resolve_engine(args.before)
        if not before.is_file():
            ap.error(f"--before: no engine binary at {before}")
        runnable = [twin for c in runnable for twin in (c, before_twin(c, before)) if twin]

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_root = OUT / "runs" / stamp
    results: list[dict] = []
    all_ok = True
    inputs: dict[str, dict] = {}

    def one_run(c: Contender, inp: Input, threads: int, i: int, repeat: int, runs: list[Run]) -> None:
        work = run_root / f"{c.name}-{threads}t-{inp.encoding}-{inp.rows}-{i + 1}"
        work.mkdir(parents=True)
        ctx = Ctx(args, engine, inp, work, threads)
        print(f"run {c.name} {threads}t {inp.encoding} {inp.rows:,} {i + 1}/{repeat} ...", end=" ", flush=True)
        r = run_once(c, ctx, args.timeout)
        runs.append(r)
        rss = "-" if r.peak_rss_kib is None else f"{r.peak_rss_kib / 1024:.1f}"
        cpu = "-" if r.cpu_s is None else f"{r.cpu_s:.2f}"
        print(f"{'    ' if r.exit_code else ''}{r.wall_s:.2f} s wall, {cpu} s CPU, {rss} MiB"
              + ("" if not r.problems else "  PROBLEMS: " + "; ".join(r.problems)), flush=True)
        if not args.keep and i > 0:
            shutil.rmtree(runs[i - 1].work, ignore_errors=True)

    def finish(c: Contender, inp: Input, threads: int, runs: list[Run]) -> None:
        nonlocal all_ok
        s = summarize(c, inp, threads, runs)
        all_ok &= s["ok"]
        results.append(s)

    def measure(c: Contender, inp: Input, threads: int, repeat: int) -> None:
        runs: list[Run] = []
        for i in range(repeat):
            one_run(c, inp, threads, i, repeat, runs)
        finish(c, inp, threads, runs)

    # Rounds: every contender, thread count and encoding runs once per round, so that each
    # round's runs share the machine's state and a ratio can be taken per round.
    combos = []
    for enc in encodings:
        inp = input_file(args.rows, enc, args.seed, args.kind)
        inputs[f"{enc}-{args.rows}"] = {"path": str(inp.path), "bytes": inp.bytes, "gen_seconds": inp.gen_seconds}
        settle(inp.path, args.settle_secs)
        for threads in thread_counts:
            for c in runnable:
                if enc in c.encodings:
                    combos.append((c, inp, threads, []))
    for i in range(args.repeat):
        print(f"round {i + 1} of {args.repeat}", flush=True)
        for c, inp, threads, runs in combos:
            one_run(c, inp, threads, i, args.repeat, runs)
    for c, inp, threads, runs in combos:
        finish(c, inp, threads, runs)
    if scale_rows and by_name["engine"] in runnable:
        for rows in scale_rows:
            inp = input_file(rows, "utf-8", args.seed, args.kind)
            inputs[f"utf-8-{rows}"] = {"path": str(inp.path), "bytes": inp.bytes, "gen_seconds": inp.gen_seconds}
            settle(inp.path, args.settle_secs)
            measure(by_name["engine"], inp, cores, min(args.repeat, 3))

    add_ratios(results)
    print()
    print(f"{cores} cores; every contender's Parquet at zstd level {args.zstd_level} (like for like); "
          f"÷duckdb, ÷polars: the median over {args.repeat} interleaved rounds of each round's ratio "
          f"to the peer on the UTF-8 file with the same threads, of wall time and of CPU time (user + sys)")
    print(fmt_table(results))
    for r in results:
        for peer in BASELINES:
            if r.get(f"vs_{peer}_rounds") and r["contender"] not in PEERS:
                print(f"  {r['contender']}/{r['threads']}t/{r['encoding']} ÷{peer} per round: "
                      f"wall {r[f'vs_{peer}_rounds']}, CPU {r[f'vs_{peer}_cpu_rounds']}")
    for r in results:
        probs = sorted({p for run in r["runs"] for p in run["problems"]})
        if probs:
            print(f"  {r['contender']}/{r['threads']}t/{r['encoding']} FAILED: " + "; ".join(probs))
    changes = before_after(results)
    if changes:
        print()
        print("after ÷ before (--before), median and each round (below 1: the build timed is faster):")
        print("\n".join(changes))
    print()
    print("targets:")
    verdicts = targets(results, args.rss_goal_mb, cores, args.rows)
    print("\n".join(verdicts))

    if args.json:
        doc = {
            "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": {"machine": platform.machine(), "system": platform.platform(), "cpus": os.cpu_count(),
                     "cores_used": cores, "python": platform.python_version(),
                     "loadavg_at_end": os.getloadavg()},
            "git": git_rev(),
            "engine": str(engine),
            "params": {"rows": args.rows, "encodings": encodings, "threads": thread_counts, "repeat": args.repeat,
                       "zstd_level": args.zstd_level,
                       "seed": args.seed, "kind": args.kind, "date": DATE, "mid": MID,
                       "rss_goal_mb": args.rss_goal_mb, "scale_rows": scale_rows},
            "inputs": inputs,
            "results": results,
            "targets": verdicts,
            "ok": all_ok,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
