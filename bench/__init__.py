"""Benchmarks: `python -m bench [--size small|default|large] [names...]`.

Each part registers functions with `@benchmark("name")`; a benchmark prints one line per measure:
`bench <name> value=<v> unit=<u> baseline=<b> ratio=<v/b>`.

TARGETS is the one table of what each line must reach (issue 10). `python -m bench` checks every
line it printed against it and exits non-zero when a line misses half its target (the CI gate), so
the printed figures and the gate cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

REGISTRY: dict[str, Callable[[str], None]] = {}
PARTS = ("bench.intel", "bench.ingest", "bench.anomaly", "bench.findings", "bench.quality",
         "bench.quality_cloudtrail", "bench.workers")  # each part module registers itself on import


@dataclass(frozen=True)
class Target:
    """`on` the line's "ratio" or its "value"; `higher` True when more is better."""

    goal: float
    on: str = "ratio"
    higher: bool = True

    def met(self, ratio: float, value: float, slack: float = 1.0) -> bool:
        """Reached within a factor `slack` (the gate passes slack=2: half the target)."""
        measured = ratio if self.on == "ratio" else value
        return measured >= self.goal / slack if self.higher else measured <= self.goal * slack

    def describe(self) -> str:
        return f"{self.on} {'>=' if self.higher else '<='} {self.goal:g}"


_P95 = Target(150.0, on="value", higher=False)  # ms, every findings view (page and API)
TARGETS: dict[str, Target] = {
    "ingest.cloudtrail": Target(0.5),
    "ingest.flow": Target(0.5),
    "ingest.dns": Target(0.5),
    "ingest.workers2": Target(1.8),
    "intel.lookup": Target(15.0),
    "objects.cloudtrail_small": Target(500.0, on="value"),  # objects/s with two workers
    **{f"console.findings_p95.{surface}.{view}": _P95
       for surface in ("page", "api") for view in ("default", "severity", "type", "account", "page1000")},
    # Keyset: page 1000 within 20 % of page 1 (baseline = page 1 of the same surface).
    "console.findings_p95.page.page1000_vs_page1": Target(1.2, higher=False),
    "console.findings_p95.api.page1000_vs_page1": Target(1.2, higher=False),
    # Seconds from the object's PUT to its finding in the database.
    "latency.object_to_finding.polling": Target(60.0, on="value", higher=False),
    "latency.object_to_finding.sqs": Target(10.0, on="value", higher=False),
    # "A few hundred MB" for the largest (50 MB gzip'd) CloudTrail object: streamed, not loaded whole.
    "memory.worker_peak_largest_object": Target(400.0, on="value", higher=False),
}

# Lines that miss their target today (issue 10 is open for them), with the lowest level measured on
# 2026-11-28 at small and default size (runs vary by a third on this shared 2-core machine). Until a
# line reaches its target, the gate holds it at half of this level if that is below half the target,
# so a slowdown is still caught; every run prints each missed target (bench.missed). Raise an entry
# when its line improves; delete it once the line meets its target.
SHORTFALLS: dict[str, float] = {
    "ingest.cloudtrail": 0.25,  # default 0.26-0.29 paired (113cae0; 0.22-0.26 before a731e42), small 0.28 (target
                                # 0.5): the floor is the decode alone, ~half of what 0.5 allows the whole pipeline
    "ingest.flow": 0.25,  # default 0.30-0.35 (113cae0; 0.22-0.31 before 1f5f42a), small 0.28
    "ingest.dns": 0.40,  # default 0.45-0.55 (113cae0), small 0.43-0.51
    "ingest.workers2": 1.16,  # default 1.34-2.12; small 1.16-1.59: its 8 objects make 5 tasks for 2 processes;
                              # the floor itself gains 1.53-1.95 here (machine.floor_scaling2)
    "objects.cloudtrail_small": 470.0,  # default 549-796 (734 at ac48c61), small 470-604 objects/s: a GET still costs the moto
                                        # server and boto3 ~1.6-2 ms of CPU (target 500)
}

LINE = re.compile(r"^bench (?P<name>\S+) value=(?P<value>[-\d.e+]+) unit=\S+ baseline=(?P<baseline>[-\d.e+]+) "
                  r"ratio=(?P<ratio>[-\d.e+na]+)")


def benchmark(name: str) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    def register(fn: Callable[[str], None]) -> Callable[[str], None]:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return register


def _number(x: float) -> str:
    """Enough digits to compare across commits: whole numbers from 100 up, 3 significant below."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def report(name: str, value: float, unit: str, baseline: float) -> str:
    ratio = value / baseline if baseline else float("nan")
    line = f"bench {name} value={_number(value)} unit={unit} baseline={_number(baseline)} ratio={ratio:.2f}"
    print(line, flush=True)
    return line


def _measured(lines: list[str]) -> dict[str, tuple[float, float]]:
    seen: dict[str, tuple[float, float]] = {}
    for line in lines:
        m = LINE.match(line)
        if m:
            seen[m["name"]] = (float(m["ratio"]), float(m["value"]))
    return seen


def gate(lines: list[str], *, require: bool = False) -> list[str]:
    """Failures of the printed bench lines against TARGETS at half the target (empty: all pass), or
    for a known shortfall at half its recorded level. With `require`, every target line must have
    been printed (CI: a skipped benchmark fails)."""
    seen = _measured(lines)
    failures = []
    for name, target in TARGETS.items():
        if name not in seen:
            if require:
                failures.append(f"{name}: not measured (target {target.describe()})")
            continue
        ratio, value = seen[name]
        if target.met(ratio, value, slack=2.0):
            continue
        measured = ratio if target.on == "ratio" else value
        if name not in SHORTFALLS:
            failures.append(f"{name}: {target.on}={measured:g}, below half its target ({target.describe()})")
            continue
        recorded = Target(SHORTFALLS[name], on=target.on, higher=target.higher)
        if not recorded.met(ratio, value, slack=2.0):
            failures.append(f"{name}: {target.on}={measured:g}, below half its recorded level "
                            f"({recorded.describe()}; target {target.describe()})")
    return failures


def missed(lines: list[str]) -> list[str]:
    """Every printed line that does not reach its whole target (reported, not a failure by itself)."""
    seen = _measured(lines)
    out = []
    for name, target in TARGETS.items():
        if name in seen and not target.met(*seen[name]):
            ratio, value = seen[name]
            out.append(f"{name}: {target.on}={ratio if target.on == 'ratio' else value:g} (target {target.describe()})")
    return out
