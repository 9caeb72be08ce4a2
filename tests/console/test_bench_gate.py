"""The CI gate reads the very lines `make bench` prints and fails at half of each target in
bench.TARGETS, in the target's direction (more is better for rates, less for times and memory)."""

from __future__ import annotations

from bench import LINE, SHORTFALLS, TARGETS, gate, missed, report


def test_printed_lines_are_what_the_gate_reads(capsys):
    report("ingest.workers2", 1.2e5, "events/s", 1e5)
    report("latency.object_to_finding.sqs", 4.25, "s", 5)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["bench ingest.workers2 value=120000 unit=events/s baseline=100000 ratio=1.20",
                     "bench latency.object_to_finding.sqs value=4.25 unit=s baseline=5 ratio=0.85"]
    assert all(LINE.match(line) for line in lines)


def test_a_ratio_below_half_its_target_fails():
    assert TARGETS["intel.lookup"].goal == 15 and "intel.lookup" not in SHORTFALLS
    assert gate(["bench intel.lookup value=800 unit=lookups/s baseline=100 ratio=8.00"]) == []
    failures = gate(["bench intel.lookup value=700 unit=lookups/s baseline=100 ratio=7.00"])
    assert failures == ["intel.lookup: ratio=7, below half its target (ratio >= 15)"]


def test_lower_is_better_targets_fail_above_twice_the_target():
    ok = "bench console.findings_p95.api.type value=290 unit=ms baseline=900 ratio=0.32"
    slow = "bench console.findings_p95.api.type value=310 unit=ms baseline=900 ratio=0.34"
    assert gate([ok]) == []
    assert gate([slow]) == ["console.findings_p95.api.type: value=310, below half its target (value <= 150)"]


def test_ci_requires_every_target_line():
    line = "bench intel.lookup value=5000000 unit=lookups/s baseline=200000 ratio=25.00"
    assert gate([line]) == []
    missing = gate([line], require=True)
    assert len(missing) == len(TARGETS) - 1 and all("not measured" in m for m in missing)


def test_comments_and_other_lines_are_ignored():
    assert gate(["# objects: 3.1s", "bench anomaly.recall value=1.00 unit=recall histories=2"]) == []


def test_a_known_shortfall_is_held_at_half_its_recorded_level(monkeypatch):
    monkeypatch.setitem(SHORTFALLS, "ingest.flow", 0.2)
    assert gate(["bench ingest.flow value=150 unit=rows/s baseline=1000 ratio=0.15"]) == []
    assert gate(["bench ingest.flow value=90 unit=rows/s baseline=1000 ratio=0.09"]) == [
        "ingest.flow: ratio=0.09, below half its recorded level (ratio >= 0.2; target ratio >= 0.5)"]
    assert missed(["bench ingest.flow value=150 unit=rows/s baseline=1000 ratio=0.15"]) == [
        "ingest.flow: ratio=0.15 (target ratio >= 0.5)"]


def test_every_shortfall_names_a_target():
    assert set(SHORTFALLS) <= set(TARGETS)
