"""`make bench` (anomaly part): detection quality on the scenario suite and scoring speed.

Prints, per injected anomaly type, how often it is found over several generated histories
(recall), how many findings are false (precision), and events per second for scoring+learning
(CPU time of this process, so a busy machine does not distort it), for day-sized batches and for
one large frame.

    python -m tests.anomaly.bench [--seeds N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    import polars as pl

    from ingest.anomaly.detect import detect_anomalies
    from ingest.anomaly.state import Baselines
    from tests.anomaly import scenario

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    found_by: Counter[str] = Counter()
    injected_by: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    findings_total = false_total = events_total = 0
    cpu = 0.0
    for seed in range(1, args.seeds + 1):
        built = scenario.build(seed)
        baselines = Baselines()
        findings = []
        started = time.process_time()
        for day in built.days:
            findings += detect_anomalies(day, baselines)
        cpu += time.process_time() - started
        events_total += sum(d.height for d in built.days)
        result = scenario.evaluate(findings, built)
        for attack in built.injected:
            injected_by[attack.name] += 1
            if attack.name in result["found"]:
                found_by[attack.name] += 1
                typed[result["found"][attack.name].finding_type] += 1
        findings_total += len(findings)
        false_total += len(result["false_positives"])

    print(f"Anomaly detection: scenario suite, {args.seeds} generated histories "
          f"(21 days of habits + 7 test days, 6 principals, {events_total // args.seeds:,} events each)")
    print(f"  {'injected anomaly':<52} {'recall':>7}")
    for name in injected_by:
        print(f"  {name:<52} {found_by[name] / injected_by[name]:>7.2f}")
    recall = sum(found_by.values()) / sum(injected_by.values())
    precision = (findings_total - false_total) / findings_total if findings_total else 1.0
    print(f"  {'all':<52} {recall:>7.2f}   precision {precision:.2f} "
          f"({findings_total} findings, {false_total} false)")
    print("  finding types raised: " + ", ".join(f"{t} x{n}" for t, n in sorted(typed.items())))
    print(f"  scoring + learning, day batches:   {events_total / cpu:>10,.0f} events/s (CPU)")
    whole = pl.concat(scenario.build(1).days, how="vertical_relaxed")
    big = pl.concat([whole] * 4)
    started = time.process_time()
    detect_anomalies(big, Baselines())
    elapsed = time.process_time() - started
    print(f"  scoring + learning, one frame of {big.height:,}: {big.height / elapsed:>10,.0f} events/s (CPU)")


if __name__ == "__main__":
    main()
