#!/usr/bin/env python3
"""What a TypeScript plugin costs next to its Rust original: the TS port of mask-pii against
the Rust mask-pii (and the engine with no plugin, for reference), in one run.

For each contender, in interleaved rounds (every contender once per round, so a busy machine
hurts them alike), it times:

* throughput: `engine run` of one generated Toss file (bench/gen_toss.py, --rows rows) through
  the plugin into Parquet, with a fresh state folder whose plugin cache is already warm;
  rows/s = rows / wall seconds.
* start: `engine run` over an empty inbox with the plugin cached: what starting a pipeline
  with that plugin costs (load the cached component, instantiate, init, probe nothing).

Wall and CPU seconds (user + system of the engine process) are reported as medians. The first
run of each plugin compiles it and fills the cache; that compile time is printed, not counted.

    python3 bench/ts_plugin.py [--rows 100000] [--rounds 3] [--start-repeat 10]

Needs the engine built (cargo build --release -p engine, which builds the Rust plugins) and the
TS plugins built (scripts/ensure-ts-plugins.sh).
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEY = "bench-key"
CONTENDERS = {
    "engine (no plugin)": None,
    "mask-pii (Rust)": REPO / "target/plugins/wasm32-wasip2/release/mask_pii.wasm",
    "mask-pii (TypeScript)": REPO / "plugins-ts/mask-pii/dist/mask_pii_ts.wasm",
}


def pipeline(folder: Path, module: Path | None, inbox: Path, state: Path) -> Path:
    transform = ""
    if module is not None:
        transform = f"""[[transforms]]
type = "wasm"
name = "mask"
module = {json.dumps(str(module))}
deadline_ms = 600000
[transforms.config]
key = "{KEY}"
"""
    text = f"""[pipeline]
name = "bench"
dates = "all"
state_dir = {json.dumps(str(state))}

[source]
type = "dir"
path = {json.dumps(str(inbox))}
settle_secs = 0

[parser]
type = "toss"

{transform}
[[sinks]]
type = "parquet"
path = {json.dumps(str(folder / "lake"))}
"""
    path = folder / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def timed(engine: Path, path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `engine run`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(engine), "run", str(path), "-q"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def fresh(work: Path, name: str, cache: Path | None) -> Path:
    """A new folder with a state folder whose plugin cache is a copy of `cache`."""
    folder = Path(tempfile.mkdtemp(dir=work, prefix=name.split()[0] + "-"))
    if cache is not None and cache.exists():
        target = folder / "state" / "plugin-cache"
        shutil.copytree(cache, target)
        os.chmod(target, 0o700)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--start-repeat", type=int, default=10, help="start runs per contender per round")
    ap.add_argument("--engine", default=str(REPO / "target/release/engine"))
    args = ap.parse_args()
    engine = Path(args.engine)
    for name, module in CONTENDERS.items():
        if module is not None and not module.is_file():
            hint = "scripts/ensure-ts-plugins.sh" if "TypeScript" in name else "cargo build --release -p engine"
            sys.exit(f"{module} is missing: build it with {hint}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        subprocess.run(
            [sys.executable, str(REPO / "bench/gen_toss.py"), "--rows", str(args.rows), "--out", str(data), "--quiet"],
            check=True,
        )
        empty = work / "empty"
        empty.mkdir()
        # Fill each plugin's cache once (compiling it), and keep that cache to copy.
        caches: dict[str, Path | None] = {}
        for name, module in CONTENDERS.items():
            folder = fresh(work, name, None)
            wall, _ = timed(engine, pipeline(folder, module, empty, folder / "state"))
            caches[name] = folder / "state" / "plugin-cache"
            if module is not None:
                print(f"{name:24} first start (compiles the plugin): {wall:6.2f} s wall")
        load: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
        start: dict[str, list[tuple[float, float]]] = {name: [] for name in CONTENDERS}
        for round_ in range(args.rounds):
            for name, module in CONTENDERS.items():
                folder = fresh(work, name, caches[name])
                load[name].append(timed(engine, pipeline(folder, module, data, folder / "state")))
                path = pipeline(folder, module, empty, folder / "state")
                for _ in range(args.start_repeat):
                    start[name].append(timed(engine, path))
                shutil.rmtree(folder)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    median = lambda pairs, i: statistics.median(p[i] for p in pairs)  # noqa: E731
    print(f"\n{args.rows:,} rows, {args.rounds} interleaved rounds, start = median of {args.rounds * args.start_repeat} runs")
    print(f"{'contender':24} {'load wall s':>11} {'load CPU s':>10} {'rows/s':>10} {'start wall ms':>13} {'start CPU ms':>12}")
    for name in CONTENDERS:
        wall, cpu = median(load[name], 0), median(load[name], 1)
        print(
            f"{name:24} {wall:11.2f} {cpu:10.2f} {args.rows / wall:10,.0f} "
            f"{median(start[name], 0) * 1000:13.1f} {median(start[name], 1) * 1000:12.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
