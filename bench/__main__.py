"""Run the registered benchmarks, each in a process of its own, and check them against TARGETS.

A process per benchmark: each chooses its own database and Django settings, starts and stops its own
workers and servers, and a crash or a leak in one cannot skew the next. Exit status 1 when a
benchmark fails or a line misses half its target (bench.gate); CI=true also fails a skipped line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time

# Per-core figures: keep numeric libraries single-threaded before they are imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")


def _run_one(name: str, size: str) -> tuple[int, list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--size", size, "--in-process", name],
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    return proc.wait(), lines


def main(argv: list[str] | None = None) -> int:
    from bench import PARTS, REGISTRY, TARGETS, gate, missed

    for part in PARTS:
        importlib.import_module(part)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=("small", "default", "large"), default="default")
    parser.add_argument("--in-process", action="store_true", help="run in this process, no gate (used per benchmark)")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(sorted(REGISTRY))}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.in_process:
        # As in the product's workers (console.celery), before anything is measured: floors and
        # pipelines alike run with the allocator the workers use. From the environment, not Django's
        # settings: each benchmark chooses its database before Django reads them.
        from console.env import env_bool
        from ingest.allocator import reuse_freed_memory

        if env_bool("VIGIL_INGEST_REUSE_FREED_MEMORY", True):
            reuse_freed_memory()
        for name in args.names or sorted(REGISTRY):
            REGISTRY[name](args.size)
        return 0
    started = time.monotonic()
    lines: list[str] = []
    crashed = []
    for name in args.names or sorted(REGISTRY):
        t0 = time.monotonic()
        code, out = _run_one(name, args.size)
        lines += out
        print(f"# {name}: {time.monotonic() - t0:.0f}s", flush=True)
        if code:
            crashed.append(f"{name}: exited with status {code}")
    failures = crashed + gate(lines, require=os.environ.get("CI") == "true" and not args.names)
    print(f"# {len(args.names or REGISTRY)} benchmarks in {time.monotonic() - started:.0f}s (size {args.size}); "
          f"{len(TARGETS)} targets in bench.TARGETS, gate at half of each", flush=True)
    for miss in missed(lines):
        print(f"# TARGET MISSED {miss}", flush=True)
    for failure in failures:
        print(f"# GATE FAILED {failure}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
