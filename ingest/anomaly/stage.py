"""The anomaly step of the ingest pipeline: after the rules, score and learn each frame.

`ingest.pipeline.Pipeline` calls `stage.detect(kind, frame, ...)` for every CloudTrail and flow
frame, in the order the frames are processed, and appends the returned `Detection`s to the
object's result (they become findings through the same `findings_upsert_many` as every rule's).

- `MemoryAnomalyStage` keeps baselines in memory: the offline `analyze` command uses one pipeline
  per account for a whole run, so it learns from the files it is given in time order.
- `ingest.anomaly.services.DatabaseAnomalyStage` loads the rows a frame needs with
  SELECT … FOR UPDATE inside the object's transaction and writes them back in bulk, so any
  worker can take any object and two workers updating one principal serialise on its row.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.detect import AnomalyFinding, detect_anomalies
from ingest.anomaly.features import enrich
from ingest.anomaly.flows import detect_flow_anomalies, prepare
from ingest.anomaly.s3 import detect_s3_anomalies, s3_data_events
from ingest.anomaly.s3 import subjects as s3_subjects
from ingest.anomaly.state import ACCOUNT, INSTANCE, PRINCIPAL, Baselines

CLOUDTRAIL, FLOW = "cloudtrail", "flow"  # ingest.rules source names

# The parser keeps requestParameters only for event names someone reads: the unused-region
# deployment reads instance types and counts of these launches.
LAUNCH_EVENTS = ("RunInstances", "RequestSpotInstances", "RequestSpotFleet", "CreateFleet")


def _declare_raw_events() -> None:
    from ingest.parsers.cloudtrail import RAW_EVENT_NAMES

    RAW_EVENT_NAMES.update(LAUNCH_EVENTS)


_declare_raw_events()


def to_detection(finding: AnomalyFinding) -> Any:
    from ingest.rules import Detection

    return Detection(type=finding.finding_type, dedup_key=finding.dedup_key, title=finding.title,
                     first_seen=finding.first_seen, last_seen=finding.last_seen, count=finding.count,
                     resource=finding.resource, service=finding.service, severity=finding.severity,
                     description=finding.description, region=finding.region or None,
                     evidence=finding.evidence_events)


def cloudtrail_prepare(frame: pl.DataFrame, *, aws_account_id: str, config: AnomalyConfig) -> pl.DataFrame:
    enriched = enrich(frame, asn_lookup=config.asn_lookup)
    if "account_id" in enriched.columns:
        enriched = enriched.with_columns(pl.col("account_id").fill_null(aws_account_id))
    return enriched


def subjects(kind: str, prepared: pl.DataFrame) -> set[tuple[str, str, str]]:
    """The (aws account, kind, key) profiles a prepared frame touches."""
    if prepared.is_empty():
        return set()
    if kind == CLOUDTRAIL:
        pairs = prepared.filter(~s3_data_events()).select("account_id", "pkey").unique().iter_rows()
        out = {(a, PRINCIPAL, k) for a, k in pairs}
        return out | {(a, ACCOUNT, a) for a, _, _ in out} | s3_subjects(prepared)
    pairs = prepared.select(pl.col("account_id").fill_null(""), "subject").unique().iter_rows()
    return {(a, INSTANCE, k) for a, k in pairs}


class MemoryAnomalyStage:
    def __init__(self, *, config: AnomalyConfig | None = None, baselines: Baselines | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.baselines = baselines if baselines is not None else Baselines()

    def run(self, kind: str, prepared: pl.DataFrame, baselines: Baselines, *, region: str,
            inventory: Any = None) -> list[AnomalyFinding]:
        if kind == CLOUDTRAIL:  # management events: the IAM model; S3 data events: the S3 model
            return (detect_anomalies(prepared.filter(~s3_data_events()), baselines, config=self.config)
                    + detect_s3_anomalies(prepared, baselines, config=self.config))
        return detect_flow_anomalies(prepared, baselines, config=self.config, inventory=inventory, region=region,
                                     prepared=True)

    def prepare(self, kind: str, frame: pl.DataFrame, *, aws_account_id: str, inventory: Any = None,
                oriented: pl.DataFrame | None = None) -> pl.DataFrame:
        """`oriented`: a flow frame's `orient()`, when the caller has it (the pipeline's rules')."""
        if kind == CLOUDTRAIL:
            return cloudtrail_prepare(frame, aws_account_id=aws_account_id, config=self.config)
        prepared = prepare(frame, inventory, oriented=oriented)
        if not prepared.is_empty():
            prepared = prepared.with_columns(pl.col("account_id").fill_null(aws_account_id))
        return prepared

    def detect(self, kind: str, frame: pl.DataFrame, *, aws_account_id: str, region: str,
               inventory: Any = None, oriented: pl.DataFrame | None = None) -> list[Any]:
        if kind not in (CLOUDTRAIL, FLOW) or frame.is_empty():
            return []
        prepared = self.prepare(kind, frame, aws_account_id=aws_account_id, inventory=inventory, oriented=oriented)
        if prepared.is_empty():
            return []
        findings = self.run(kind, prepared, self.baselines, region=region, inventory=inventory)
        return [to_detection(f) for f in findings]


def anomaly_stage_default() -> MemoryAnomalyStage | None:
    """The pipeline's default: in-memory learning, unless VIGIL_ANOMALY_ENABLED is off."""
    from django.conf import settings

    if not getattr(settings, "VIGIL_ANOMALY_ENABLED", True):
        return None
    from ingest.anomaly.config import config_from_settings

    return MemoryAnomalyStage(config=config_from_settings())
