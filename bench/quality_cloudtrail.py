"""quality.cloudtrail: the labelled CloudTrail scenario (tests/scenarios/cloudtrail.py) through the real
pipeline; recall per finding type, the lowest recall, precision over all CloudTrail findings (baselines:
the issue's 95 % target) and throughput in records per CPU second (baseline: gunzip + parse alone of the
same objects, in the same run)."""

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
    report("quality.cloudtrail.throughput", result.records_per_second, "records/s",
           scorer.parse_rate(scorer.scenario_kinds(scenario)))


def _one_object_per_account(scenario) -> dict[str, bytes]:
    """The scenario's events as one large object per account (steady-state throughput, without the
    fixed per-object cost that dominates hourly objects of a few dozen events)."""
    import gzip
    import json

    from ingest.pipeline import classify_key

    merged: dict[str, list] = {}
    for key, body in scenario.objects:
        merged.setdefault(classify_key(key).aws_account_id, []).extend(json.loads(gzip.decompress(body))["Records"])
    return {account: json.dumps({"Records": events}).encode() for account, events in merged.items()}


@benchmark("quality.cloudtrail.throughput")
def throughput_cloudtrail(size: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import io
    import time

    import django

    django.setup()
    from ingest.pipeline import Pipeline
    from tests.scenarios import cloudtrail, scorer

    accounts, days = SIZES[size]
    scenario = cloudtrail.build(accounts=accounts, days=days, seed=11)
    bodies = _one_object_per_account(scenario)
    matcher = scorer.matcher_from_files()
    Pipeline(matcher=matcher).process("cloudtrail", io.BytesIO(next(iter(bodies.values()))),
                                      aws_account_id="000000000000", region="us-east-1")  # warm caches
    records, started = 0, time.process_time()
    for account, body in bodies.items():
        result = Pipeline(matcher=matcher).process("cloudtrail", io.BytesIO(body), aws_account_id=account,
                                                   region="us-east-1")
        records += result.stats.records
    report("quality.cloudtrail.throughput_large_objects", records / (time.process_time() - started), "records/s",
           scorer.parse_rate(("cloudtrail", body) for body in bodies.values()))
