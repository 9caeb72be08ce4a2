"""quality.cloudtrail: the labelled CloudTrail scenario (tests/scenarios/cloudtrail.py) through the real
pipeline; recall per finding type, the lowest recall, precision over all CloudTrail findings and
throughput. Baselines are the issue's targets (95 %)."""

from __future__ import annotations

import os

from bench import benchmark, report

SIZES = {"small": (1, 1), "default": (2, 2), "large": (4, 3)}
TARGET = 95.0


@benchmark("quality.cloudtrail")
def quality_cloudtrail(size: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from tests.scenarios import cloudtrail, scorer

    accounts, days = SIZES[size]
    scenario = cloudtrail.build(accounts=accounts, days=days, seed=11)
    findings, records, seconds = scorer.run(scenario)
    result = scorer.score(scenario, findings, records=records, seconds=seconds, types=cloudtrail.cloudtrail_types())
    for finding_type, recall in sorted(result.recall.items()):
        report(f"quality.cloudtrail.recall[{finding_type}]", recall * 100, "%", TARGET)
    report("quality.cloudtrail.recall_min", result.min_recall * 100, "%", TARGET)
    report("quality.cloudtrail.precision", result.precision * 100, "%", TARGET)
    report("quality.cloudtrail.throughput", result.records_per_second, "records/s", 1000)
