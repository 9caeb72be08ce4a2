"""Detect and learn: score each principal-hour of a CloudTrail frame, then add it to the baselines.

Hours are processed in time order across the whole frame; every principal-hour is scored against
the baselines as they stood before that hour, so a batch (or the offline analyzer's whole run)
learns exactly as if events had arrived one hour at a time. `detect_anomalies` is pure: it reads
and mutates the `Baselines` it is given and returns plain `AnomalyFinding`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from findings.catalog import LOW, finding_type
from ingest.anomaly import categories as cat
from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.features import enrich, instance_launch, observations, principal_kind
from ingest.anomaly.scoring import HourScore, Unusual, score_hour
from ingest.anomaly.state import ACCOUNT, PRINCIPAL, Baselines, Profile, frequency_tag

HIJACK_INSTANCE = re.compile(r"^(p\d|g\d|inf\d|trn\d|dl\d|x2|u-|f1)", re.I)  # GPU/accelerator, huge memory
HIJACK_COUNT = 10
EVIDENCE_MAX = 10


@dataclass
class AnomalyFinding:
    """One anomalous principal-hour or instance-hour, in the shape GuardDuty findings take."""

    finding_type: str
    severity: float
    account_id: str  # AWS account id
    region: str
    title: str
    description: str
    dedup_key: str
    first_seen: datetime
    last_seen: datetime
    count: int
    subject: str  # principal or instance key the baseline belongs to
    score: float
    threshold: float
    resource: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    evidence_events: list[dict[str, Any]] = field(default_factory=list)
    learning: bool = False

    @property
    def additional_info(self) -> dict[str, Any]:
        return self.service.get("additionalInfo", {})


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def profiled_summary(profile: Profile, features: tuple[str, ...], limit: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {"activeHours": round(profile.hours, 2)}
    if profile.first_seen:
        out["firstSeen"] = _ts(profile.first_seen).isoformat().replace("+00:00", "Z")
    for feature in features:
        out[feature] = [
            {"value": value, "hours": round(count, 2), "frequency": frequency_tag(count, profile.hours)}
            for value, count in profile.top(feature, limit)
        ]
    return out


FEATURE_WORDS = {
    "api": "API never or rarely called by this principal",
    "category": "kind of API this principal does not usually call",
    "region": "region not usually used",
    "network": "source network (/24 or /48) not usually used",
    "asn": "network organisation (ASN) not usually used",
    "ua": "user-agent version not usually used",
    "ua_family": "user agent not usually used",
    "hour": "hour of day (UTC) not usually active",
    "error": "errors not usually seen",
    "service": "AWS service not usually called",
}


def _unusual_json(unusual: list[Unusual]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for u in unusual:
        item = {"value": u.value, "rarity": round(u.rarity, 3), "probability": round(u.probability, 5),
                "principalHours": round(u.principal_hours, 2), "accountHours": round(u.account_hours, 2),
                "events": u.events}
        if u.account_rarity:
            item["accountRarity"] = round(u.account_rarity, 3)
        out.setdefault(u.feature, []).append(item)
    return out


def _sentences(unusual: list[Unusual]) -> list[str]:
    lines = []
    for u in unusual[:12]:
        seen = "never seen" if u.principal_hours < 0.05 else f"seen in {u.principal_hours:.1f} of its active hours"
        lines.append(f"{FEATURE_WORDS.get(u.feature, u.feature)}: {u.value} ({seen}; account: "
                     f"{u.account_hours:.1f} hours; rarity {u.rarity:.2f} nats)")
    return lines


def _choose_type(rows: pl.DataFrame, hour: HourScore, account: Profile,
                 config: AnomalyConfig) -> tuple[str, float, pl.DataFrame, str]:
    """(finding type, severity, rows that explain it, reason) for an anomalous hour."""
    unusual_regions = {u.value for u in hour.by_feature("region") if u.account_rarity >= config.novelty}
    launches = rows.filter(pl.col("event_name").is_in(list(cat.INFRASTRUCTURE_APIS))
                           & pl.col("region").is_in(list(unusual_regions)))
    if launches.height:
        kinds, total = [], 0
        for params in launches["request_parameters"].to_list():
            kind, count = instance_launch(params)
            kinds.append(kind)
            total += count
        hijack = total >= HIJACK_COUNT or any(k and HIJACK_INSTANCE.match(k) for k in kinds)
        return "Impact:IAMUser/AnomalousBehavior", 8.0 if hijack else 5.0, launches, (
            "infrastructure_in_unused_region_hijack" if hijack else "infrastructure_in_unused_region")
    unusual_apis = {u.value for u in hour.by_feature("api")}
    rare = rows.filter(pl.col("api").is_in(list(unusual_apis)))
    if rare.height:
        # The category whose unusual APIs carry the most evidence, weighted by how harmful the type
        # is: ten never-seen List calls and one GetSecretValue are a discovery burst, four IAM
        # writes are persistence.
        rarity = {u.value: u.rarity for u in hour.by_feature("api")}
        weight: dict[str, float] = {}
        for api, category in rare.select("api", "category").unique().iter_rows():
            severity = 5.0 if category == cat.WRITE else finding_type(cat.finding_type_for(category)).severity
            weight[category] = weight.get(category, 0.0) + rarity[api] * severity
        category = max(weight, key=lambda c: (weight[c], -cat.PRIORITY.index(c)))
        chosen = rare.filter(pl.col("category") == category)
        ftype = cat.finding_type_for(category)
        severity = 5.0 if category == cat.WRITE else finding_type(ftype).severity
        return ftype, severity, chosen, f"unusual_{category}_apis"
    if hour.by_feature("network") or hour.by_feature("asn"):
        networks = {u.value for u in hour.by_feature("network")}
        asns = {u.value for u in hour.by_feature("asn")}
        chosen = rows.filter(pl.col("network").is_in(list(networks)) | pl.col("asn").is_in(list(asns)))
        ftype = cat.finding_type_for(cat.INITIAL_ACCESS)
        return ftype, finding_type(ftype).severity, chosen, "credentials_used_from_unusual_network"
    category = cat.most_harmful(rows["category"].unique().to_list())
    ftype = cat.finding_type_for(category)
    chosen = rows.filter(pl.col("category") == category)
    return ftype, 5.0 if category == cat.WRITE else finding_type(ftype).severity, chosen, f"unusual_{category}_activity"


def principal_user(first: dict[str, Any], pkey: str) -> str:
    """The name a finding gives the principal: its user name, else the last part of its ARN."""
    return first.get("user_name") or (first.get("principal_arn") or pkey).rsplit("/", 1)[-1]


def access_key_details(first: dict[str, Any], user: str) -> dict[str, str]:
    return {"accessKeyId": first.get("access_key_id") or "", "principalId": first.get("principal_id") or "",
            "userName": user, "userType": first.get("principal_type") or ""}


def api_call_action(first: dict[str, Any], *, service_name: str, affected: dict[str, str]) -> dict[str, Any]:
    """GuardDuty's AWS_API_CALL action for the first event of an anomalous hour."""
    remote_ip = first.get("source_ip") or ""
    return {
        "actionType": "AWS_API_CALL",
        "awsApiCallAction": {
            "api": first["event_name"], "serviceName": service_name, "callerType": "Remote IP",
            "userAgent": first.get("user_agent") or "", "errorCode": first.get("error_code") or "",
            "remoteIpDetails": {("ipAddressV6" if ":" in remote_ip else "ipAddressV4"): remote_ip,
                                "organization": {"asnOrg": first.get("asn") or ""}},
            "affectedResources": affected,
        },
    }


def anomaly_info(hour: HourScore, config: AnomalyConfig, *, reason: str, method: str,
                 learning: bool) -> dict[str, Any]:
    """How the hour was scored, for the finding's additionalInfo."""
    return {"score": hour.score, "threshold": hour.threshold, "contributions": hour.contributions,
            "reason": reason, "method": method, "halfLifeDays": config.half_life_days,
            "learningDays": config.learning_days, "learning": learning}


def evidence_events(chosen: pl.DataFrame, detail: pl.Expr) -> list[dict[str, Any]]:
    """A bounded sample of the hour's events, in CloudTrail's names; `detail` is the one column that
    differs by model (the event source, or the bucket)."""
    return chosen.select(
        pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("eventTime"), pl.col("event_id").alias("eventID"),
        pl.col("event_name").alias("eventName"), detail,
        pl.col("region").alias("awsRegion"), pl.col("source_ip").alias("sourceIPAddress"),
        pl.col("user_agent").alias("userAgent"), pl.col("error_code").alias("errorCode"),
    ).head(EVIDENCE_MAX).to_dicts()


def _build_finding(*, account_id: str, pkey: str, hour_ts: int, rows: pl.DataFrame, hour: HourScore,
                   principal: Profile, account: Profile, config: AnomalyConfig, learning: bool) -> AnomalyFinding:
    ftype, severity, chosen, reason = _choose_type(rows, hour, account, config)
    if chosen.is_empty():  # the unusual values came in an earlier batch of the same hour
        chosen = rows
    if learning:
        severity = LOW
    chosen = chosen.sort("event_time")
    first = chosen.row(0, named=True)
    kind = principal_kind(first.get("principal_type") or "", pkey)
    user = principal_user(first, pkey)
    apis = sorted(set(chosen["event_name"].to_list()))
    times = rows["event_time"]
    category_words = reason.replace("_", " ")
    title = f"{category_words.capitalize()} by {kind} {user}."
    description = (f"{kind} {user} made {chosen.height} API call(s) ({', '.join(apis[:5])}"
                   f"{'…' if len(apis) > 5 else ''}) that are unusual for this principal and account: "
                   f"anomaly score {hour.score:.1f} over threshold {hour.threshold:.1f}.")
    resource = {"resourceType": "AccessKey", "accessKeyDetails": access_key_details(first, user)}
    unusual = _unusual_json(hour.unusual)
    additional = {
        "value": "",
        "type": "default",
        "anomaly": anomaly_info(hour, config, reason=reason, learning=learning,
                                method="naive-Bayes sum of smoothed log-rarities, backed off to the account"),
        "unusual": unusual,
        "unusualBehavior": _sentences(hour.unusual),
        "profiledBehavior": {
            "principal": profiled_summary(principal, ("api", "region", "network", "asn", "ua", "hour", "category")),
            "account": profiled_summary(account, ("region", "asn", "api", "ua"), limit=10),
        },
    }
    action = api_call_action(first, service_name=first["event_source"], affected={})
    service = {"action": action, "additionalInfo": additional, "resourceRole": "TARGET",
               "featureName": "CloudTrail", "detection": {"anomaly": {"profiles": additional["profiledBehavior"],
                                                                      "unusual": unusual}}}
    evidence = evidence_events(chosen, pl.col("event_source").alias("eventSource"))
    return AnomalyFinding(
        finding_type=ftype, severity=severity, account_id=account_id, region=first["region"], title=title,
        description=description, dedup_key=f"anomaly|{account_id}|{pkey}", first_seen=times.min(),
        last_seen=times.max(), count=chosen.height, subject=pkey, score=hour.score, threshold=hour.threshold,
        resource=resource, service=service, evidence_events=evidence, learning=learning,
    )


def _merge(into: dict[str, dict[str, int]], observed: dict[str, dict[str, int]]) -> None:
    for feature, values in observed.items():
        target = into.setdefault(feature, {})
        for value, n in values.items():
            target[value] = target.get(value, 0) + n


def detect_anomalies(frame: pl.DataFrame, baselines: Baselines, *,
                     config: AnomalyConfig | None = None) -> list[AnomalyFinding]:
    """Score every principal-hour in `frame` (oldest first), then learn it. Returns the findings.

    `frame` is a CloudTrail frame (features.py documents the columns) or one already `enrich`ed."""
    config = config or AnomalyConfig()
    if frame.height == 0:
        return []
    enriched = frame if "pkey" in frame.columns else enrich(frame, asn_lookup=config.asn_lookup)
    if enriched.height == 0:
        return []
    observed = observations(enriched)
    # Sorted on the columns it reads only: sorting the enriched frame gathered all ~27 of them.
    identity = ["principal_type", "principal_arn", "user_name", "access_key_id"]
    info = (enriched.select("event_time", "account_id", "pkey", *identity).sort("event_time")
            .group_by("account_id", "pkey")
            .agg(pl.col("principal_type").last(), pl.col("principal_arn").last(), pl.col("user_name").last(),
                 pl.col("access_key_id").drop_nulls().last()))
    by_hour: dict[int, list[tuple[str, str]]] = {}
    for account_id, pkey, hour_ts in observed:
        by_hour.setdefault(hour_ts, []).append((account_id, pkey))
    findings: list[AnomalyFinding] = []
    half_life = config.half_life
    for hour_ts in sorted(by_hour):
        account_hour: dict[str, dict[str, dict[str, int]]] = {}
        account_events: dict[str, int] = {}
        account_current: dict[str, bool] = {}
        for account_id in sorted({a for a, _ in by_hour[hour_ts]}):
            account_current[account_id] = baselines.get(account_id, ACCOUNT, account_id).begin_hour(hour_ts, half_life)
        for account_id, pkey in sorted(by_hour[hour_ts]):
            batch = observed[(account_id, pkey, hour_ts)]
            events = sum(batch.get("api", {}).values())
            principal = baselines.get(account_id, PRINCIPAL, pkey)
            account = baselines.get(account_id, ACCOUNT, account_id)
            current = principal.begin_hour(hour_ts, half_life)
            # The whole hour so far (earlier batches of it included), scored against completed hours.
            obs = principal.add_pending(batch, events) if current else batch
            learning = (principal.is_learning(hour_ts, config.learning_seconds)
                        or account.is_learning(hour_ts, config.learning_seconds))
            hour = score_hour(principal, account, obs, config)
            already = current and principal.pending_flagged
            if hour.anomalous and not already and (not learning or config.learning_mode == "low"):
                rows = enriched.filter((pl.col("account_id") == account_id) & (pl.col("pkey") == pkey)
                                       & (pl.col("hour_ts") == hour_ts))
                findings.append(_build_finding(account_id=account_id, pkey=pkey, hour_ts=hour_ts, rows=rows,
                                               hour=hour, principal=principal, account=account, config=config,
                                               learning=learning))
            if current:
                principal.pending_score = None if learning else hour.score
                principal.pending_flagged = principal.pending_flagged or hour.anomalous
            else:  # a late object: learn it straight into the counts
                principal.learn_hour(hour_ts, batch, half_life, events=events)
                if not learning and not hour.anomalous:
                    principal.score_stats.add(hour.score)  # calibrate on benign hours only
            _merge(account_hour.setdefault(account_id, {}), batch)
            account_events[account_id] = account_events.get(account_id, 0) + events
        for account_id, obs in account_hour.items():
            account = baselines.get(account_id, ACCOUNT, account_id)
            if account_current[account_id]:
                account.add_pending(obs, account_events[account_id])
            else:
                account.learn_hour(hour_ts, obs, half_life, events=account_events[account_id])
    for account_id, pkey, ptype, arn, user, key in info.iter_rows():
        profile = baselines.get(account_id, PRINCIPAL, pkey)
        profile.info.update({"type": principal_kind(ptype, pkey), "arn": arn or "", "userName": user or "",
                             **({"accessKeyId": key} if key else {})})
    for profile in baselines.dirty().values():
        profile.prune()
    return findings
