"""The labelled CloudTrail scenario (people with habits, roles, instance roles, CI, console sign-ins,
then every IAM/S3 attack) through the real pipeline: per-type recall and overall precision."""

from __future__ import annotations

import pytest

from tests.scenarios import cloudtrail, scorer


@pytest.fixture(scope="module")
def report() -> scorer.Report:
    scenario = cloudtrail.build(accounts=2, days=2, seed=11)
    findings, records, seconds = scorer.run(scenario)
    return scorer.score(scenario, findings, records=records, seconds=seconds, types=cloudtrail.cloudtrail_types())


def test_every_type_is_labelled(report: scorer.Report) -> None:
    # Every CloudTrail type of this issue has attacks in the scenario.
    assert set(report.recall) == cloudtrail.cloudtrail_types()


def test_recall_per_type_and_precision(report: scorer.Report) -> None:
    assert report.min_recall >= 0.95, report.table()
    assert report.precision >= 0.95, report.table()


def test_benign_look_alikes_stay_quiet(report: scorer.Report) -> None:
    # The CI stack's trail torn down by its creator, the traveller, the VPN user, the NAT-shared worker.
    assert not report.trap_hits, report.table()


@pytest.mark.slow
def test_larger_scenario_other_seed() -> None:
    scenario = cloudtrail.build(accounts=4, days=3, seed=5)
    findings, records, seconds = scorer.run(scenario)
    report = scorer.score(scenario, findings, records=records, seconds=seconds, types=cloudtrail.cloudtrail_types())
    assert report.min_recall >= 0.95 and report.precision >= 0.95 and not report.trap_hits, report.table()
