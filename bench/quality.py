"""quality.network: detection quality of the VPC flow and DNS rules on a labelled scenario
(tests/scenarios: several accounts, days of benign traffic with traps, injected attacks of every
type, AWS's S3 layouts), run through the real pipeline offline.

Prints the lowest per-type recall and the precision (both against the issue's 0.95 target), the
pipeline's records per CPU second on that data against gunzip + parse alone of the same objects, and
the per-type table on stderr.
"""

from __future__ import annotations

import os
import sys

from bench import benchmark, report

SIZES = {  # accounts, days, benign scale (≈ flows per host per hour / 60)
    "small": (2, 2, 0.5),
    "default": (3, 3, 2.0),
    "large": (4, 4, 6.0),
}
TARGET = 0.95


def ratio_line(name: str, value: float, baseline: float) -> str:
    line = f"bench {name} value={value:.3f} unit=ratio baseline={baseline:.2f} ratio={value / baseline:.2f}"
    print(line, flush=True)
    return line


def run_quality(size: str = "default") -> dict[str, float]:
    """Build the scenario of `size`, analyse it, print the bench lines; returns the measures."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from tests.scenarios.generator import build
    from tests.scenarios.scorer import evaluate, parse_rate, scenario_kinds

    accounts, days, scale = SIZES[size]
    scenario = build(accounts=accounts, days=days, scale=scale, seed=2026)
    result = evaluate(scenario)
    print(result.table(), file=sys.stderr, flush=True)
    ratio_line("quality.network.recall", result.min_recall, TARGET)
    ratio_line("quality.network.precision", result.precision, TARGET)
    # Baseline: gunzip + parse alone of the same objects (CPU time, as the pipeline's).
    report("quality.network.records_per_s", result.records_per_second, "records/s", parse_rate(scenario_kinds(scenario)))
    return {"recall": result.min_recall, "precision": result.precision, "records_per_s": result.records_per_second,
            "trap_hits": float(len(result.trap_hits))}


@benchmark("quality.network")
def quality_network(size: str) -> None:
    run_quality(size)
