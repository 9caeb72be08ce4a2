"""S3 data-event anomalies: GuardDuty's `*:S3/AnomalousBehavior` types.

The same technique as the IAM model (ingest/anomaly/detect.py: decayed presence counts per
principal-hour, smoothed log-rarities backed off to the account, a per-principal calibrated
threshold), applied to each principal's **S3 data events** (GetObject, PutObject, DeleteObject,
ListObjects, PutObjectAcl, ...; GuardDuty's S3 Protection source). Management events stay with the
IAM model, so one call never counts twice.

Profiles (kind `s3` in ingest.Baseline): one per principal (the IAM model's principal key), plus
one per account (kind `account`, key `s3:<account id>`) the principal's rarities back off to.

Features of a principal-hour: the S3 API, its category (discovery / exfiltration / delete /
permission / write), the **bucket**, source network and ASN, user agent (family, family/major),
hour of day, errors, and the number of object reads (a volume: an hour reading far more objects
than the principal ever did, `read_ratio` times its decayed hourly maximum and at least
`read_min`, adds the log of the ratio to the score).

Finding type: the category whose unusual APIs carry the most rarity x severity (as the IAM
model); with no unusual API (a new network or a read burst), the most harmful category present in
the hour, exfiltration for a read burst:

    discovery    -> Discovery:S3/AnomalousBehavior         (Low)
    exfiltration -> Exfiltration:S3/AnomalousBehavior      (High)
    delete       -> Impact:S3/AnomalousBehavior.Delete     (High)
    permission   -> Impact:S3/AnomalousBehavior.Permission (High)
    write        -> Impact:S3/AnomalousBehavior.Write      (Medium)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from findings.catalog import LOW, finding_type
from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.detect import (
    AnomalyFinding,
    _merge,
    _sentences,
    _unusual_json,
    access_key_details,
    anomaly_info,
    api_call_action,
    evidence_events,
    principal_kind,
    principal_user,
    profiled_summary,
)
from ingest.anomaly.features import feature_counts
from ingest.anomaly.scoring import API_TOP, HourScore, Unusual, threshold_for, value_rarity
from ingest.anomaly.state import ACCOUNT, Baselines, Profile
from ingest.rules.callers import S3_DISCOVERY, S3_DISCOVERY_PREFIXES, S3_EXFILTRATION

S3 = "s3"  # Baseline kind of a principal's S3 data access
S3_SOURCE = "s3.amazonaws.com"

DISCOVERY, EXFILTRATION, DELETE, PERMISSION, WRITE = "discovery", "exfiltration", "delete", "permission", "write"
FINDING_TYPES = {
    DISCOVERY: "Discovery:S3/AnomalousBehavior",
    EXFILTRATION: "Exfiltration:S3/AnomalousBehavior",
    DELETE: "Impact:S3/AnomalousBehavior.Delete",
    PERMISSION: "Impact:S3/AnomalousBehavior.Permission",
    WRITE: "Impact:S3/AnomalousBehavior.Write",
}
PRIORITY = (DELETE, PERMISSION, EXFILTRATION, WRITE, DISCOVERY)  # most harmful first
S3_DELETE = {"DeleteObject", "DeleteObjects", "DeleteObjectVersion", "DeleteObjectTagging", "DeleteBucket"}
S3_PERMISSION = {"PutObjectAcl", "PutBucketAcl", "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketOwnershipControls"}
READ_APIS = {"GetObject", "GetObjectTorrent", "SelectObjectContent"}

# Weights of each feature's rarity in the hour's score (as scoring.WEIGHTS; the bucket is the S3
# model's own: a principal touching a bucket it never touched counts like a new kind of API).
WEIGHTS = {"api": 0.5, "category": 1.0, "bucket": 1.0, "network": 1.0, "asn": 1.0, "ua_family": 0.5, "ua": 0.5,
           "hour": 0.5, "error": 1.0}
READS = "_reads"  # volume feature: object reads in the hour


@dataclass(frozen=True)
class S3Config:
    read_min: int = 200  # a read burst is at least this many object reads in an hour
    read_ratio: float = 10.0  # ... and this many times the principal's decayed hourly maximum


def category_of(event_name: str) -> str:
    if event_name in S3_DELETE:
        return DELETE
    if event_name in S3_PERMISSION:
        return PERMISSION
    if event_name in S3_EXFILTRATION:
        return EXFILTRATION
    if event_name.startswith(S3_DISCOVERY_PREFIXES) or event_name in S3_DISCOVERY:
        return DISCOVERY
    return WRITE


def account_key(account_id: str) -> str:
    return f"s3:{account_id}"


def s3_data_events() -> pl.Expr:
    """Rows of an enriched CloudTrail frame that belong to this model."""
    return (pl.col("event_category").fill_null("") == "Data") & (pl.col("event_source") == S3_SOURCE)


def prepare(enriched: pl.DataFrame) -> pl.DataFrame:
    """S3 data events of an enriched frame with `bucket` and `s3_category` columns."""
    data = enriched.filter(s3_data_events())
    if data.is_empty():
        return data.with_columns(pl.lit(None, dtype=pl.String).alias("bucket"),
                                 pl.lit(None, dtype=pl.String).alias("s3_category"))
    names = data.select("event_name").unique()
    names = names.with_columns(pl.Series("s3_category", [category_of(n or "") for n in names["event_name"].to_list()],
                                         dtype=pl.String))
    return data.join(names, on="event_name", how="left").with_columns(
        pl.col("request_parameters").str.json_path_match("$.bucketName").fill_null("-").alias("bucket"))


def observations(data: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, dict[str, int]]]:
    """(account, principal, hour) -> feature -> value -> events; object reads as a volume."""
    keys = ["account_id", "pkey", "hour_ts"]
    cols = {"api": pl.col("event_name"), "category": pl.col("s3_category"), "bucket": pl.col("bucket"),
            "network": pl.col("network"), "asn": pl.col("asn"), "ua_family": pl.col("ua_family"),
            "ua": pl.col("ua"), "hour": pl.col("hour"), "region": pl.col("region")}   # region: profiled, not scored
    out = feature_counts(data, keys, cols)
    errors = data.filter(pl.col("error_code").fill_null("") != "").group_by(
        [*keys, "error_code"]).len()
    for account, pkey, hour_ts, code, n in errors.iter_rows():
        out[(account, pkey, hour_ts)].setdefault("error", {})[f"{code}:x{min(n.bit_length(), 6)}"] = n
    reads = data.filter(pl.col("event_name").is_in(list(READ_APIS))).group_by(keys).len()
    for account, pkey, hour_ts, n in reads.iter_rows():
        out[(account, pkey, hour_ts)][READS] = {"objects": n}
    return out


def score(principal: Profile, account: Profile, observed: dict[str, dict[str, int]], config: AnomalyConfig,
          s3_config: S3Config) -> HourScore:
    """The hour's score: weighted rarest unusual value per feature (five rarest APIs), plus a read burst."""
    unusual: list[Unusual] = []
    contributions: dict[str, float] = {}
    for feature, weight in WEIGHTS.items():
        rarest = []
        for value, events in observed.get(feature, {}).items():
            r, p = value_rarity(principal, account, feature, value, config)
            if r >= config.novelty:
                unusual.append(Unusual(feature, value, r, p, principal.count(feature, value),
                                       account.count(feature, value), events))
                rarest.append(r)
        if rarest:
            rarest.sort(reverse=True)
            contributions[feature] = weight * sum(rarest[: API_TOP if feature == "api" else 1])
    reads = observed.get(READS, {}).get("objects", 0)
    usual = principal.volume_max.get(READS, 0.0)
    if reads >= s3_config.read_min and reads > s3_config.read_ratio * usual:
        contributions["reads"] = math.log(reads / max(usual, 1.0))
        unusual.append(Unusual("reads", str(reads), contributions["reads"], 0.0, round(usual, 1), 0.0, reads))
    unusual.sort(key=lambda u: -u.rarity)
    return HourScore(round(sum(contributions.values()), 4), round(threshold_for(principal, config), 4), unusual,
                     {k: round(v, 4) for k, v in contributions.items()})


def _severity(category: str) -> float:
    return finding_type(FINDING_TYPES[category]).severity


def choose(rows: pl.DataFrame, hour: HourScore) -> tuple[str, pl.DataFrame, str]:
    """(category, rows that explain it, reason) of an anomalous hour."""
    rarity = {u.value: u.rarity for u in hour.by_feature("api")}
    rare = rows.filter(pl.col("event_name").is_in(list(rarity)))
    if rare.height:
        weight: dict[str, float] = {}
        for api, category in rare.select("event_name", "s3_category").unique().iter_rows():
            weight[category] = weight.get(category, 0.0) + rarity[api] * _severity(category)
        category = max(weight, key=lambda c: (weight[c], -PRIORITY.index(c)))
        return category, rare.filter(pl.col("s3_category") == category), f"unusual_s3_{category}_apis"
    if hour.by_feature("reads"):
        return EXFILTRATION, rows.filter(pl.col("event_name").is_in(list(READ_APIS))), "unusual_s3_read_volume"
    present = set(rows["s3_category"].to_list())
    category = next((c for c in PRIORITY if c in present), DISCOVERY)
    return category, rows.filter(pl.col("s3_category") == category), "s3_access_from_unusual_context"


def _finding(*, account_id: str, pkey: str, rows: pl.DataFrame, hour: HourScore, principal: Profile,
             account: Profile, config: AnomalyConfig, learning: bool) -> AnomalyFinding:
    category, chosen, reason = choose(rows, hour)
    if chosen.is_empty():  # the unusual values came in an earlier batch of the same hour
        chosen = rows
    chosen = chosen.sort("event_time")
    first = chosen.row(0, named=True)
    ftype = FINDING_TYPES[category]
    severity = LOW if learning else _severity(category)
    kind = principal_kind(first.get("principal_type"), pkey)
    user = principal_user(first, pkey)
    buckets = sorted(set(chosen["bucket"].to_list()))
    apis = sorted(set(chosen["event_name"].to_list()))
    bucket_list = ", ".join(buckets[:3]) + ("…" if len(buckets) > 3 else "")
    description = (f"{kind} {user} made {chosen.height} S3 call(s) ({', '.join(apis[:5])}) on {bucket_list} that are "
                   f"unusual for this principal and account: anomaly score {hour.score:.1f} over threshold "
                   f"{hour.threshold:.1f}.")
    unusual = _unusual_json(hour.unusual)
    profiles = {"principal": profiled_summary(principal, ("api", "bucket", "category", "network", "asn", "ua", "hour")),
                "account": profiled_summary(account, ("bucket", "api", "asn", "ua"))}
    additional = {
        "value": "", "type": "default",
        "anomaly": anomaly_info(hour, config, reason=reason, learning=learning,
                                method="naive-Bayes sum of smoothed log-rarities over S3 data events, "
                                       "backed off to the account"),
        "unusual": unusual, "unusualBehavior": _sentences(hour.unusual), "profiledBehavior": profiles,
    }
    service = {
        "resourceRole": "TARGET", "featureName": "S3DataEvents", "additionalInfo": additional,
        "detection": {"anomaly": {"profiles": profiles, "unusual": unusual}},
        "action": api_call_action(first, service_name=S3_SOURCE,
                                  affected={"AWS::S3::Bucket": buckets[0]} if buckets else {}),
    }
    resource = {
        "resourceType": "S3Bucket",
        "accessKeyDetails": access_key_details(first, user),
        "s3BucketDetails": [{"name": b, "arn": f"arn:aws:s3:::{b}", "type": "Destination"} for b in buckets[:10]],
    }
    evidence = evidence_events(chosen, pl.col("bucket").alias("bucketName"))
    times = rows["event_time"]
    return AnomalyFinding(
        finding_type=ftype, severity=severity, account_id=account_id, region=first["region"],
        title=f"Unusual {category} of S3 data by {kind} {user}.", description=description,
        dedup_key=f"anomaly-s3|{account_id}|{pkey}|{category}", first_seen=times.min(), last_seen=times.max(),
        count=chosen.height, subject=pkey, score=hour.score, threshold=hour.threshold, resource=resource,
        service=service, evidence_events=evidence, learning=learning)


def subjects(enriched: pl.DataFrame) -> set[tuple[str, str, str]]:
    """The (aws account, kind, key) profiles an enriched frame's S3 data events touch."""
    data = enriched.filter(s3_data_events())
    pairs = set(data.select("account_id", "pkey").unique().iter_rows())
    return {(a, S3, k) for a, k in pairs} | {(a, ACCOUNT, account_key(a)) for a, _ in pairs}


def detect_s3_anomalies(enriched: pl.DataFrame, baselines: Baselines, *, config: AnomalyConfig | None = None,
                        s3_config: S3Config | None = None) -> list[AnomalyFinding]:
    """Score every principal-hour of S3 data events in `enriched` (oldest first), then learn it.

    `enriched` comes from ingest.anomaly.features.enrich (it needs the `event_category` column);
    other events are ignored. Hours split over several batches are scored and learned as one (the
    profiles' pending hour), exactly as in detect_anomalies."""
    config, s3_config = config or AnomalyConfig(), s3_config or S3Config()
    data = prepare(enriched)
    if data.is_empty():
        return []
    observed = observations(data)
    findings: list[AnomalyFinding] = []
    half_life = config.half_life
    for hour_ts in sorted({h for _, _, h in observed}):
        in_hour = sorted((a, p) for a, p, h in observed if h == hour_ts)
        account_hour: dict[str, dict[str, dict[str, int]]] = {}
        current_account = {a: baselines.get(a, ACCOUNT, account_key(a)).begin_hour(hour_ts, half_life)
                           for a, _ in in_hour}
        for account_id, pkey in in_hour:
            batch = observed[(account_id, pkey, hour_ts)]
            events = sum(batch.get("api", {}).values())
            principal = baselines.get(account_id, S3, pkey)
            account = baselines.get(account_id, ACCOUNT, account_key(account_id))
            current = principal.begin_hour(hour_ts, half_life)
            obs = principal.add_pending(batch, events) if current else batch
            learning = (principal.is_learning(hour_ts, config.learning_seconds)
                        or account.is_learning(hour_ts, config.learning_seconds))
            hour = score(principal, account, obs, config, s3_config)
            already = current and principal.pending_flagged
            if hour.anomalous and not already and (not learning or config.learning_mode == "low"):
                rows = data.filter((pl.col("account_id") == account_id) & (pl.col("pkey") == pkey)
                                   & (pl.col("hour_ts") == hour_ts))
                findings.append(_finding(account_id=account_id, pkey=pkey, rows=rows, hour=hour, principal=principal,
                                         account=account, config=config, learning=learning))
            if current:
                principal.pending_score = None if learning else hour.score
                principal.pending_flagged = principal.pending_flagged or hour.anomalous
            else:  # a late object: learn it straight into the counts
                principal.learn_hour(hour_ts, batch, half_life, events=events)
                if not learning and not hour.anomalous:
                    principal.score_stats.add(hour.score)
            _merge(account_hour.setdefault(account_id, {}), {f: v for f, v in batch.items() if f != READS})
        for account_id, obs in account_hour.items():
            account = baselines.get(account_id, ACCOUNT, account_key(account_id))
            events = sum(obs.get("api", {}).values())
            if current_account[account_id]:
                account.add_pending(obs, events)
            else:
                account.learn_hour(hour_ts, obs, half_life, events=events)
    info = data.sort("event_time").group_by("account_id", "pkey").agg(
        pl.col("principal_type").last(), pl.col("principal_arn").last(), pl.col("user_name").last())
    for account_id, pkey, ptype, arn, user in info.iter_rows():
        profile = baselines.get(account_id, S3, pkey)
        profile.info.update({"type": principal_kind(ptype, pkey), "arn": arn or "", "userName": user or "",
                             "profile": "S3 data events"})
    for profile in baselines.dirty().values():
        profile.prune()
    return findings

