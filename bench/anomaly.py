"""anomaly.*: detection quality on the scenario suite and scoring speed of the anomaly step.

anomaly.quality — per injected anomaly, how often it is found with its expected type over several
generated histories (tests/anomaly/scenario.py: 21 days of habits, then 7 test days with four
injected anomalies and four benign variations; tests/anomaly/s3_scenario.py: the same for S3 data
events with the five `*:S3/AnomalousBehavior` types, lines `anomaly.s3.*`), and the precision of
all findings raised.

anomaly.scoring — events per second of scoring + learning (detect_anomalies on day-sized batches),
against the floor of parsing the same events from gzip'd CloudTrail JSON with ingest's parser,
both single-threaded CPU time of this process (a busy machine does not distort them).
"""

from __future__ import annotations

import io
import time
from collections import Counter

from bench import benchmark, report

SEEDS = {"small": 2, "default": 5, "large": 10}


def _suite(prefix: str, seeds: int, build, detect) -> None:
    """Recall per injected anomaly, overall recall and precision over `seeds` generated histories."""
    from tests.anomaly import scenario

    found_by: Counter[str] = Counter()
    injected_by: Counter[str] = Counter()
    typed: Counter[str] = Counter()
    findings_total = false_total = 0
    for seed in range(1, seeds + 1):
        built = build(seed)
        findings = detect(built.days)
        result = scenario.evaluate(findings, built)
        for attack in built.injected:
            injected_by[attack.name] += 1
            if attack.name in result["found"] and result["found"][attack.name].finding_type in attack.expected_types:
                found_by[attack.name] += 1
                typed[result["found"][attack.name].finding_type] += 1
        findings_total += len(findings)
        false_total += len(result["false_positives"])
    for name in injected_by:
        print(f"bench {prefix}.recall[{name}] value={found_by[name] / injected_by[name]:.2f} unit=recall "
              f"histories={seeds}", flush=True)
    recall = sum(found_by.values()) / sum(injected_by.values())
    precision = (findings_total - false_total) / findings_total if findings_total else 1.0
    print(f"bench {prefix}.recall value={recall:.2f} unit=recall histories={seeds}", flush=True)
    print(f"bench {prefix}.precision value={precision:.2f} unit=precision findings={findings_total} "
          f"false={false_total}", flush=True)
    print(f"bench {prefix}.types " + " ".join(f"{t}={n}" for t, n in sorted(typed.items())), flush=True)


@benchmark("anomaly.quality")
def quality(size: str) -> None:
    """IAM (management events) and S3 (data events) scenario suites, each found with its type."""
    from ingest.anomaly.detect import detect_anomalies
    from ingest.anomaly.features import enrich
    from ingest.anomaly.s3 import detect_s3_anomalies
    from ingest.anomaly.state import Baselines
    from tests.anomaly import s3_scenario, scenario

    def run(detect):
        def over(days):
            baselines = Baselines()
            return [f for day in days for f in detect(day, baselines)]
        return over

    _suite("anomaly", SEEDS[size], scenario.build, run(detect_anomalies))
    _suite("anomaly.s3", SEEDS[size], s3_scenario.build,
           run(lambda day, baselines: detect_s3_anomalies(enrich(day), baselines)))


@benchmark("anomaly.scoring")
def scoring(size: str) -> None:
    from ingest.anomaly.detect import detect_anomalies
    from ingest.anomaly.state import Baselines
    from ingest.parsers import ParseStats
    from ingest.parsers.cloudtrail import iter_cloudtrail
    from tests.anomaly import scenario

    built = scenario.build(1)
    days = built.days * (2 if size == "large" else 1)
    events = sum(d.height for d in days)
    started = time.process_time()
    baselines = Baselines()
    for day in days:
        detect_anomalies(day, baselines)
    elapsed = time.process_time() - started
    bodies = scenario.cloudtrail_objects(built) * (2 if size == "large" else 1)
    started = time.process_time()
    parsed = 0
    for body in bodies:
        for frame in iter_cloudtrail(io.BytesIO(body), ParseStats()):
            parsed += frame.height
    floor = time.process_time() - started
    report("anomaly.scoring", events / elapsed, "events/s", parsed / floor)
