"""Run the registered benchmarks."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Per-core figures: keep numeric libraries single-threaded before they are imported.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")


def main(argv: list[str] | None = None) -> int:
    from bench import PARTS, REGISTRY

    for part in PARTS:
        importlib.import_module(part)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=("small", "default", "large"), default="default")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(sorted(REGISTRY))}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    for name in args.names or sorted(REGISTRY):
        REGISTRY[name](args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
