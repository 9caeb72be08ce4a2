"""The detection rule registry. Every rule module in this package is imported automatically.

How to add a rule (no edits anywhere else):

1. Create `ingest/rules/<family>.py` and decorate a function with `@rule(...)`:

       @rule(
           source=FLOW,                        # frame it reads: CLOUDTRAIL | FLOW | DNS
           finding_types=("Recon:EC2/Portscan",),   # GuardDuty names from findings.catalog
           settings={"min_ports": Setting(50, "distinct ports of one host within the window")},
           state="none",                        # or a sentence saying what it keeps in ctx.state
           cases=PORTSCAN_CASES,                # labelled records beside the rule (see Case)
       )
       def portscan(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]: ...

2. The function is vectorised: filter/join/group the polars frame (columns: ingest.parsers.*.SCHEMA
   / BASE_COLUMNS), use `ctx.ip_hits` / `ctx.domain_hits` (intel matches for every distinct address
   or name of the frame, trusted entries already removed) and `ctx.trusted_ips`, and call
   `group_rows()` to turn each group of matching rows into one Detection (`dedup_key` = resource and
   actor: detections with the same account, region, type and key aggregate into one finding; count,
   first/last seen and a 10-row evidence sample come from the group). Reuse the builders in
   `threat_intel.py` (`network_detection`, `api_call_detection`, `access_key_resource`,
   `threat_service`) for GuardDuty's Resource/Service shapes and `ctx.inventory.instance_resource()` to
   name instances. No per-record Python, no DB, network or clock access: everything comes via `ctx`.
   The CloudTrail frame holds only the columns some rule reads (ingest/parsers/cloudtrail.py `_TOP`,
   `_IDENTITY`, `_ISSUER`): add one there when a rule needs it.
   CloudTrail's requestParameters / responseElements / additionalEventData columns are filled only
   for the event names some rule declares with `raw_events=("PutBucketPolicy", ...)` (and for S3
   data events): decoding every event's blobs would cost more than parsing the event.
3. Severity defaults to the catalogue's (GuardDuty's) severity; set `Detection.severity` to override
   it (types whose severity varies). Thresholds are `Setting`s with documented defaults, overridable
   per deployment by `settings.VIGIL_RULE_SETTINGS = {"<rule name>": {"<setting>": value}}` and
   read with `ctx.setting("<setting>")`.
4. State across objects and workers (windows, histories) goes through `ctx.state_get(keys)` /
   `ctx.state_put(key, value)` (JSON values), stored in the database in the same transaction as the
   findings, so any worker can take any object and a retried object sees the state as it was.
   Rows expire (ingest.state.rule_state_expire): after the rule's window setting (`window_seconds`,
   `window_minutes`, `*window_hours`, ...) plus a grace period, or, for `history=True` rules and rules
   without a window, after VIGIL_RULE_STATE_HISTORY_DAYS.
5. Cases: `Case(name, expect, records, ...)` with raw log records in the source's own format; the
   suite (tests/ingest/test_rule_cases.py) runs every case through the real parser, enrichment and
   rule, and checks the finding types (positive and near-miss negative cases side by side).
6. Correlation: `@rule(..., stage="correlate")` runs after every detect rule of the frame and reads
   `ctx.detections` (their detections) besides the frame — attack sequences are built this way.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from django.conf import settings as django_settings

from findings.catalog import FINDING_TYPE_RE, FINDING_TYPES

CLOUDTRAIL, FLOW, DNS = "cloudtrail", "flow", "dns"
SOURCES = (CLOUDTRAIL, FLOW, DNS)
EVIDENCE_ROWS = 10


@dataclass(frozen=True)
class Setting:
    default: Any
    doc: str


@dataclass(frozen=True)
class Case:
    """A labelled sample: raw records (as the log source writes them) and the finding types expected.

    `threat_list` / `trusted_list` are TXT list contents for the case's matcher; `expect` lists
    finding types (empty = must raise nothing); `expect_severity` optionally pins severities.
    """

    name: str
    records: list[Any]
    expect: tuple[str, ...] = ()
    threat_list: tuple[str, ...] = ()
    threat_list_name: str = "CaseThreats"
    trusted_list: tuple[str, ...] = ()
    builtin: bool = True
    expect_severity: Mapping[str, float] = field(default_factory=dict)
    expect_count: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Detection:
    """One aggregated detection of one rule, before it becomes a finding."""

    type: str
    dedup_key: str
    title: str
    first_seen: datetime
    last_seen: datetime
    count: int
    resource: dict[str, Any]
    service: dict[str, Any]
    severity: float | None = None
    description: str = ""
    region: str | None = None
    evidence: list[Any] = field(default_factory=list)

    def resolved_severity(self) -> float:
        return FINDING_TYPES[self.type].severity if self.severity is None else self.severity


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    finding_types: tuple[str, ...]
    evaluate: Callable[[pl.DataFrame, RuleContext], Iterable[Detection]]
    settings: Mapping[str, Setting]
    state: str
    cases: tuple[Case, ...]
    # "detect" rules read the frame; "correlate" rules run after them and also read
    # ctx.detections (what the detect rules found in the same frame), e.g. attack sequences.
    stage: str = "detect"
    # True when the state is a history (first sightings, learned addresses, configuration) that must
    # outlive the rule's window; such rows expire after VIGIL_RULE_STATE_HISTORY_DAYS (ingest.state).
    history: bool = False


STAGES = ("detect", "correlate")
REGISTRY: dict[str, Rule] = {}


class RuleContext:
    """What a rule may know besides its frame. Built once per frame by the pipeline."""

    def __init__(
        self,
        *,
        aws_account_id: str,
        region: str,
        ip_hits: Mapping[str, tuple] | None = None,
        domain_hits: Mapping[str, tuple] | None = None,
        trusted_ips: set[str] | None = None,
        inventory: Any = None,
        state: Any = None,
        rule: Rule | None = None,
        addresses: pl.Series | None = None,
    ) -> None:
        self.aws_account_id, self.region = aws_account_id, region
        self.ip_hits = ip_hits or {}
        self.domain_hits = domain_hits or {}
        self.trusted_ips = trusted_ips or set()
        self.inventory = inventory
        self.state = state
        self.rule = rule
        # Flow frames: the frame's distinct addresses (found once for the intel lookup, reused by
        # the rules' orientation); None when the caller did not compute them.
        self.addresses = addresses
        self.detections: list[Detection] = []  # the frame's detections so far (for correlate rules)

    def state_get(self, keys: Iterable[str]) -> dict[str, Any]:
        assert self.rule is not None and self.state is not None
        return self.state.get(self.rule.name, keys)

    def state_put(self, key: str, value: Any) -> None:
        assert self.rule is not None and self.state is not None
        self.state.put(self.rule.name, key, value)

    def setting(self, name: str) -> Any:
        assert self.rule is not None
        overrides = getattr(django_settings, "VIGIL_RULE_SETTINGS", {}).get(self.rule.name, {})
        return overrides.get(name, self.rule.settings[name].default)


def rule(
    *,
    source: str,
    finding_types: tuple[str, ...],
    settings: Mapping[str, Setting] | None = None,
    state: str = "none",
    cases: Iterable[Case] = (),
    name: str | None = None,
    raw_events: Iterable[str] = (),
    stage: str = "detect",
    history: bool = False,
) -> Callable[[Callable], Callable]:
    """Register a rule; invalid metadata fails at import time, not at 3 a.m. in a worker."""

    def register(fn: Callable) -> Callable:
        rule_name = name or f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        if rule_name in REGISTRY:
            raise ValueError(f"duplicate rule {rule_name}")
        if source not in SOURCES:
            raise ValueError(f"rule {rule_name}: source must be one of {SOURCES}")
        if not finding_types:
            raise ValueError(f"rule {rule_name}: declare at least one finding type")
        for finding_type in finding_types:
            if not FINDING_TYPE_RE.match(finding_type) or finding_type not in FINDING_TYPES:
                raise ValueError(f"rule {rule_name}: {finding_type!r} is not a GuardDuty finding type")
        if stage not in STAGES:
            raise ValueError(f"rule {rule_name}: stage must be one of {STAGES}")
        case_list = tuple(cases)
        if case_list and (not any(c.expect for c in case_list) or all(c.expect for c in case_list)):
            raise ValueError(f"rule {rule_name}: cases need at least one positive and one negative")
        if raw_events:
            from ingest.parsers.cloudtrail import RAW_EVENT_NAMES

            RAW_EVENT_NAMES.update(raw_events)
        REGISTRY[rule_name] = Rule(rule_name, source, tuple(finding_types), fn, dict(settings or {}), state, case_list,
                                   stage, history)
        return fn

    return register


def rules_for(source: str) -> list[Rule]:
    load_rules()
    chosen = [r for r in REGISTRY.values() if r.source == source]
    return sorted(chosen, key=lambda r: STAGES.index(r.stage))  # stable: detect rules keep their order


_loaded = False


def load_rules() -> None:
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    _loaded = True


def group_rows(
    frame: pl.DataFrame, by: list[str], *, time: str, evidence: list[str] | None = None
) -> list[dict[str, Any]]:
    """One dict per group: the group's key columns, `_count`, `_first`, `_last`, `_latest` (the
    latest row, whose details a GuardDuty finding shows) and `_evidence` (up to 10 rows)."""
    if frame.is_empty():
        return []
    cols = evidence or frame.columns
    grouped = frame.sort(time).group_by(by, maintain_order=True).agg(
        pl.len().alias("_count"),
        pl.col(time).min().alias("_first"),
        pl.col(time).max().alias("_last"),
        pl.struct(frame.columns).last().alias("_latest"),
        pl.struct(cols).head(EVIDENCE_ROWS).alias("_evidence"),
    )
    return grouped.to_dicts()


def hit_fields(hits: tuple) -> tuple[str, str, list[str]]:
    """(threat list name, source, threat names) of the first hit: what GuardDuty writes into the finding."""
    hit = hits[0]
    names = sorted({n for h in hits for n in h.threat_names})
    return hit.list_name, hit.source, names


def threat_service(hits: tuple) -> dict[str, Any]:
    """additionalInfo + evidence blocks naming the matched lists."""
    list_name, _, names = hit_fields(hits)
    info: dict[str, Any] = {"threatListName": list_name}
    if names:
        info["threatName"] = names[0]
    details = []
    for hit in hits:
        entry: dict[str, Any] = {"threatListName": hit.list_name}
        if hit.threat_names:
            entry["threatNames"] = list(hit.threat_names)
        details.append(entry)
    return {"additionalInfo": info, "evidence": {"threatIntelligenceDetails": details}}
