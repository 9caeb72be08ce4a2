"""Run a scenario through the real pipeline (offline, one account after another, objects in time
order, one state store and inventory per account as a worker fleet would share them through the
database) and score the findings against the labels.

Findings are detections aggregated the way the findings store aggregates them: by account, type and
dedup key. A finding is a true positive when it names a labelled (or acceptable) resource with the
right type; recall is per labelled type; precision is over all findings of the network rules.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.parsers import ParseStats
from ingest.pipeline import PARSERS, Pipeline, classify_key
from ingest.rules import CLOUDTRAIL, REGISTRY, load_rules
from ingest.state import MemoryStateStore
from intel.matching import matcher_from_files
from tests.scenarios.generator import Label, Scenario


@dataclass
class Finding:
    account: str
    type: str
    dedup_key: str
    count: int
    text: str  # dedup key + resource JSON: what a label's resource id is looked up in


@dataclass
class Report:
    recall: dict[str, float] = field(default_factory=dict)
    missed: list[Label] = field(default_factory=list)
    false_positives: list[Finding] = field(default_factory=list)
    trap_hits: list[tuple[str, Finding]] = field(default_factory=list)
    findings: int = 0
    precision: float = 1.0
    records: int = 0
    seconds: float = 0.0

    @property
    def min_recall(self) -> float:
        return min(self.recall.values()) if self.recall else 1.0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def table(self) -> str:
        lines = [f"{'finding type':60} recall"]
        lines += [f"{t:60} {r:.3f}" for t, r in sorted(self.recall.items())]
        lines.append(f"precision {self.precision:.3f} over {self.findings} findings; {len(self.false_positives)} false "
                     f"positive(s); {len(self.trap_hits)} trap hit(s); {self.records:,} records in {self.seconds:.1f}s "
                     f"({self.records_per_second:,.0f} records/s)")
        for fp in self.false_positives[:20]:
            lines.append(f"  FP {fp.account} {fp.type} {fp.dedup_key}")
        for label in self.missed[:20]:
            lines.append(f"  MISSED {label.account} {label.type} {label.resource} {label.note}")
        return "\n".join(lines)


def scenario_matcher(scenario: Scenario, workdir: Path) -> Any:
    threats, trusted = workdir / "threats.txt", workdir / "trusted.txt"
    threats.write_text("\n".join(scenario.threat_list) + "\n")
    trusted.write_text("\n".join(scenario.trusted_list) + "\n")
    return matcher_from_files(threat_lists=[("ScenarioThreats", str(threats), "TXT")],
                              trusted_list=("ScenarioTrusted", str(trusted), "TXT"))


def network_types() -> set[str]:
    load_rules()
    return {t for rule in REGISTRY.values() if rule.source != CLOUDTRAIL for t in rule.finding_types}


def run(scenario: Scenario, *, matcher: Any = None) -> tuple[list[Finding], int, float]:
    """All findings of the scenario (aggregated), records analysed, seconds spent in the pipeline."""
    with tempfile.TemporaryDirectory() as tmp:
        matcher = matcher or scenario_matcher(scenario, Path(tmp))
    pipelines: dict[str, Pipeline] = {}
    merged: dict[tuple[str, str, str], Finding] = {}
    records, spent = 0, 0.0
    for key, body in scenario.objects:
        info = classify_key(key)
        pipeline = pipelines.setdefault(info.aws_account_id, Pipeline(matcher=matcher, state=MemoryStateStore()))
        started = time.process_time()  # CPU time: stable on a shared machine (as bench.ingest)
        result = pipeline.process(info.kind, io.BytesIO(body), aws_account_id=info.aws_account_id,
                                  region=info.region or "us-east-1")
        spent += time.process_time() - started
        records += result.stats.records
        for d in result.detections:
            ident = (info.aws_account_id, d.type, d.dedup_key)
            text = d.dedup_key + " " + json.dumps(d.resource)
            if ident in merged:
                merged[ident].count += d.count
                merged[ident].text += " " + text
            else:
                merged[ident] = Finding(info.aws_account_id, d.type, d.dedup_key, d.count, text)
    return list(merged.values()), records, spent


def parse_rate(objects: Iterable[tuple[str, bytes]]) -> float:
    """Records per CPU second of gunzip + parse alone over (log type, body) objects: the baseline of
    the quality benchmarks' throughput, measured in the same run on the same data."""
    records, spent = 0, 0.0
    for kind, body in objects:
        stats = ParseStats()
        started = time.process_time()
        for _ in PARSERS[kind](io.BytesIO(body), stats):
            pass
        spent += time.process_time() - started
        records += stats.records
    return records / spent if spent else 0.0


def scenario_kinds(scenario: Scenario) -> list[tuple[str, bytes]]:
    """The scenario's objects as (log type, body), their type from AWS's key layout."""
    return [(classify_key(key).kind, body) for key, body in scenario.objects]


def score(scenario: Scenario, findings: list[Finding], *, records: int = 0, seconds: float = 0.0,
          types: set[str] | None = None) -> Report:
    """`types`: the finding types scored (default: the network rules')."""
    report = Report(records=records, seconds=seconds)
    ours = types if types is not None else network_types()
    findings = [f for f in findings if f.type in ours]
    report.findings = len(findings)

    def names(f: Finding, label: Label) -> bool:
        return f.account == label.account and f.type == label.type and label.named_in(f.text)

    by_type: dict[str, list[bool]] = defaultdict(list)
    for label in scenario.labels:
        found = any(names(f, label) for f in findings)
        by_type[label.type].append(found)
        if not found:
            report.missed.append(label)
    report.recall = {t: sum(v) / len(v) for t, v in by_type.items()}
    allowed = scenario.labels + scenario.acceptable
    report.false_positives = [f for f in findings if not any(names(f, label) for label in allowed)]
    report.precision = 1 - len(report.false_positives) / len(findings) if findings else 1.0
    for trap in scenario.traps:
        for f in findings:
            if f.account == trap.account and trap.named_in(f.text):
                report.trap_hits.append((trap.name, f))
    return report


def evaluate(scenario: Scenario) -> Report:
    findings, records, seconds = run(scenario)
    return score(scenario, findings, records=records, seconds=seconds)
