"""Benchmarks: `python -m bench [--size small|default|large] [names...]`.

Each part registers functions with `@benchmark("name")`; a benchmark prints one line per measure:
`bench <name> value=<v> unit=<u> baseline=<b> ratio=<v/b>`.
"""

from __future__ import annotations

from collections.abc import Callable

REGISTRY: dict[str, Callable[[str], None]] = {}
PARTS = ("bench.intel", "bench.ingest", "bench.anomaly", "bench.findings", "bench.quality",
         "bench.quality_cloudtrail")  # each part module registers itself on import


def benchmark(name: str) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    def register(fn: Callable[[str], None]) -> Callable[[str], None]:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return register


def report(name: str, value: float, unit: str, baseline: float) -> str:
    line = f"bench {name} value={value:.0f} unit={unit} baseline={baseline:.0f} ratio={value / baseline:.2f}"
    print(line, flush=True)
    return line
