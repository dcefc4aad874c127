#!/usr/bin/env python3
"""How much a pipeline's start costs with WebAssembly plugins, once they are compiled and cached.

Runs `engine run` over an empty inbox (so only start-up and shut-down are timed) with no
transform and with two transforms (merchant-mapping and mask-pii), each many times, and prints
the medians and their difference. The first run of the plugin pipeline compiles the plugins and
fills the cache; it is not counted.

    python3 bench/plugin_start.py [--repeat 30] [--engine target/release/engine]
"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "target/plugins/wasm32-wasip2/release"


def pipeline(folder: Path, transforms: str) -> Path:
    (folder / "inbox").mkdir(exist_ok=True)
    text = f"""[pipeline]
name = "start"
dates = "all"
state_dir = {json.dumps(str(folder / "state"))}

[source]
type = "dir"
path = {json.dumps(str(folder / "inbox"))}

{transforms}
[[sinks]]
type = "parquet"
path = {json.dumps(str(folder / "lake"))}
"""
    path = folder / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


TWO_PLUGINS = f"""[[transforms]]
type = "wasm"
name = "mapping"
module = {json.dumps(str(PLUGINS / "merchant_mapping.wasm"))}
[transforms.config]
fee_rate = 0.025

[[transforms]]
type = "wasm"
name = "mask-pii"
module = {json.dumps(str(PLUGINS / "mask_pii.wasm"))}
[transforms.config]
key = "bench-key"
"""


def time_runs(engine: Path, path: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([str(engine), "run", str(path), "-q"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--engine", default=str(REPO / "target/release/engine"))
    args = ap.parse_args()
    engine = Path(args.engine)
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as wasm_dir:
        plain = pipeline(Path(plain_dir), "")
        with_plugins = pipeline(Path(wasm_dir), TWO_PLUGINS)
        started = time.perf_counter()
        subprocess.run([str(engine), "run", str(with_plugins), "-q"], check=True, stdout=subprocess.DEVNULL)
        cold = time.perf_counter() - started
        plain_times = time_runs(engine, plain, args.repeat)
        wasm_times = time_runs(engine, with_plugins, args.repeat)
    plain_ms = statistics.median(plain_times) * 1000
    wasm_ms = statistics.median(wasm_times) * 1000
    print(f"start, no transform          : median {plain_ms:7.1f} ms over {args.repeat} runs")
    print(f"start, 2 plugins (cached)    : median {wasm_ms:7.1f} ms over {args.repeat} runs")
    print(f"start, 2 plugins (compiling) : {cold * 1000:7.1f} ms (first run, fills the cache)")
    print(f"cost of two cached plugins   : {wasm_ms - plain_ms:+7.1f} ms (goal: under 50 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
