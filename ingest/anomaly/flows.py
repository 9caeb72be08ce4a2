"""Instance baselines from VPC flow logs: usual remote ports, protocols, peers and bytes per hour.

Input: the ingest pipeline's flow frame (ingest.parsers.flow.BASE_COLUMNS): account_id,
interface_id, srcaddr, dstaddr, srcport, dstport, protocol, bytes, start (epoch seconds), action,
and when the format has them instance_id and flow_direction.

The instance's side of a record is the one the flow rules take (`ingest.rules._net.orient`: the
custom format's `flow-direction`, else the private side, else the address the interface sees most
often), so the model and the rules read every record the same way; egress records are those whose
source is the instance. An outbound connection is an egress record to a lower destination port than
its source port (a client's ephemeral port towards a service port); its destination port and
protocol are the "remote port". Egress bytes are summed per remote host and hour.

Findings (GuardDuty's): `Behavior:EC2/NetworkPortUnusual` for a remote port the instance has no
history with (rarity of the port among its active hours ≥ novelty, never seen), High for LDAP
ports 389/1389 ("Possible log4j callback"); `Behavior:EC2/TrafficVolumeUnusual` when an hour's
egress to one host exceeds both a floor and `volume_ratio` times the most the instance usually
sends to a host in an hour (a decayed maximum, so a one-off big transfer fades).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from findings.catalog import HIGH, LOW, finding_type
from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.detect import AnomalyFinding, profiled_summary
from ingest.anomaly.features import network_of
from ingest.anomaly.state import INSTANCE, Baselines, Profile
from ingest.parsers.flow import with_base_columns
from ingest.rules._net import orient

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
PORT_NAMES = {22: "SSH", 23: "Telnet", 25: "SMTP", 53: "DNS", 80: "HTTP", 389: "LDAP", 443: "HTTPS", 445: "SMB",
              1389: "LDAP", 3306: "MySQL", 3389: "RDP", 4444: "Unknown", 5432: "PostgreSQL", 6667: "IRC"}
LOG4J_PORTS = frozenset({389, 1389})
VOLUME = "_bytes"
VOLUME_TOP = 20  # remote hosts per instance-hour whose bytes are kept
# Most-used values per feature and instance-hour that are scored and learned: a scan of thousands of
# ports or hosts is capped (its first ports still show as unusual; the profile caps values anyway).
VALUES_TOP = 100
FLAGGED = "!flagged"


def prepare(frame: pl.DataFrame, inventory: Any = None, *, oriented: pl.DataFrame | None = None) -> pl.DataFrame:
    """Accepted egress records with the subject key (instance id, else ENI), hour and outbound flag.
    `oriented`: `orient(frame)`, when the caller has it (the pipeline's rules computed it)."""
    if frame.is_empty():
        return frame
    if oriented is None:
        oriented = orient(with_base_columns(frame))
    keep = (pl.col("interface_id").is_not_null() & pl.col("start").is_not_null()
            & (pl.col("action").fill_null("ACCEPT") == "ACCEPT") & (pl.col("direction") == "OUTBOUND"))
    # Only the columns used here, then the filter: it copies a third of the oriented frame.
    out = oriented.select("account_id", "interface_id", "instance_id", "srcaddr", "dstaddr", "srcport", "dstport",
                          "protocol", "bytes", "start", "end", "local", keep.alias("_keep")).filter("_keep").drop("_keep")
    if inventory is not None and getattr(inventory, "links", None):
        links = inventory.links
        enis = out["interface_id"].unique().to_list()
        mapping = pl.DataFrame({"interface_id": enis, "_inv": [links.get(e) for e in enis]},
                               schema={"interface_id": out.schema["interface_id"], "_inv": pl.String})
        out = out.join(mapping, on="interface_id", how="left").with_columns(
            pl.coalesce("instance_id", "_inv").alias("instance_id")).drop("_inv")
    return out.with_columns(
        pl.coalesce("instance_id", "interface_id").alias("subject"),
        ((pl.col("start") // 3600) * 3600).alias("hour_ts"),
        ((pl.col("dstport") < pl.col("srcport")) & pl.col("dstport").is_not_null()).alias("outbound"),
        pl.col("bytes").fill_null(0),
    )


def _port(protocol: pl.Expr, dstport: pl.Expr) -> pl.Expr:
    """The "remote port" feature value, e.g. "6/443"."""
    return protocol.cast(pl.String) + "/" + dstport.cast(pl.String)


def _observations(egress: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, dict[str, int]]]:
    out: dict[tuple[str, str, int], dict[str, dict[str, int]]] = {}
    keys = ("account_id", "subject", "hour_ts")
    outbound = egress.filter(pl.col("outbound"))
    # Two group-bys over the records; each feature's values come from their (far fewer) groups. The
    # per-host one also sums every egress record's bytes, for the volume below.
    by_port = outbound.group_by(*keys, "protocol", "dstport").len()
    per_host = egress.group_by(*keys, "dstaddr").agg(pl.col("outbound").sum().cast(pl.UInt32).alias("len"),
                                                     pl.col("bytes").sum())
    by_host = per_host.filter(pl.col("len") > 0).drop("bytes")
    counts = {
        "port": by_port.select(*keys, _port(pl.col("protocol"), pl.col("dstport")).alias("v"), "len"),
        "protocol": by_port.select(*keys, pl.col("protocol").cast(pl.String).alias("v"), "len"),
        "peer": _with_peer_network(by_host).select(*keys, pl.col("peer").alias("v"), "len"),
    }
    for feature, values in counts.items():
        # Ties at the cut go by value: the same records always learn the same baseline.
        grouped = (values.group_by(*keys, "v").agg(pl.col("len").sum())
                   .sort(["len", "v"], descending=[True, False], nulls_last=True)
                   .group_by(*keys, maintain_order=True).head(VALUES_TOP))
        for account, subject, hour_ts, value, n in grouped.iter_rows():
            out.setdefault((account or "", subject, hour_ts), {}).setdefault(feature, {})[value or "-"] = n
    # Egress bytes per remote host and hour; only each instance-hour's biggest hosts matter for the
    # usual maximum and the findings, so a scan of thousands of hosts stays a few entries.
    volume = (per_host.drop("len")
              .sort(["bytes", "dstaddr"], descending=[True, False], nulls_last=True)
              .group_by(*keys, maintain_order=True)
              .head(VOLUME_TOP))
    for account, subject, hour_ts, peer, total in volume.iter_rows():
        out.setdefault((account or "", subject, hour_ts), {}).setdefault(VOLUME, {})[peer or "-"] = int(total)
    return out


def _with_peer_network(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `peer`: the /24 of IPv4 destinations in polars, network_of() for the (few) others."""
    frame = frame.with_columns(pl.col("dstaddr").cast(pl.String))  # one row per host: text is cheap here
    ipv4 = pl.col("dstaddr").str.contains(r"^\d+\.\d+\.\d+\.\d+$").fill_null(False)
    frame = frame.with_columns(pl.when(ipv4).then(pl.col("dstaddr").str.replace(r"\.\d+$", ".0/24")).alias("peer"))
    others = frame.filter(pl.col("peer").is_null())["dstaddr"].unique()
    if len(others):
        mapping = pl.DataFrame({"dstaddr": others, "_peer": [network_of(v) for v in others.to_list()]},
                               schema={"dstaddr": pl.String, "_peer": pl.String})
        frame = frame.join(mapping, on="dstaddr", how="left", nulls_equal=True).with_columns(
            pl.coalesce("peer", "_peer").alias("peer")).drop("_peer")
    return frame


def _resource(subject: str, rows: pl.DataFrame, inventory: Any) -> dict[str, Any]:
    first = rows.row(0, named=True)
    instance = subject if subject.startswith("i-") else None
    if inventory is not None and hasattr(inventory, "instance_resource"):
        return inventory.instance_resource(instance_id=instance, eni=first["interface_id"], ip=first["local"])
    details: dict[str, Any] = {"networkInterfaces": [{"networkInterfaceId": first["interface_id"],
                                                      "privateIpAddress": first["local"]}]}
    if instance:
        details["instanceId"] = instance
    return {"resourceType": "Instance", "instanceDetails": details}


def _action(row: dict[str, Any]) -> dict[str, Any]:
    port = int(row["dstport"]) if row["dstport"] is not None else 0
    remote = row["dstaddr"] or ""
    return {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
        "connectionDirection": "OUTBOUND", "protocol": PROTOCOLS.get(row["protocol"], str(row["protocol"])),
        "blocked": False,
        "localIpDetails": {"ipAddressV4": row["local"] or ""},
        "localPortDetails": {"port": int(row["srcport"] or 0), "portName": "Unknown"},
        "remoteIpDetails": {("ipAddressV6" if ":" in remote else "ipAddressV4"): remote},
        "remotePortDetails": {"port": port, "portName": PORT_NAMES.get(port, "Unknown")},
    }}


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _port_findings(account_id: str, subject: str, hour_ts: int, obs: dict[str, dict[str, int]], profile: Profile,
                   rows: Callable[[], pl.DataFrame], config: AnomalyConfig, learning: bool, inventory: Any) -> list[AnomalyFinding]:
    findings = []
    flagged = obs.setdefault(FLAGGED, {})
    for port, events in obs.get("port", {}).items():
        if f"port:{port}" in flagged or profile.count("port", port) >= 0.5:
            continue
        r = profile.rarity("port", port, config.alpha)
        if r < config.novelty:
            continue
        flagged[f"port:{port}"] = 1
        proto, _, number = port.partition("/")
        port_rows = rows().filter(pl.col("outbound") & (_port(pl.col("protocol"), pl.col("dstport")) == port)).sort("start")
        if port_rows.is_empty():
            continue
        first = port_rows.row(0, named=True)
        severity = HIGH if int(number or 0) in LOG4J_PORTS else finding_type("Behavior:EC2/NetworkPortUnusual").severity
        if learning:
            severity = LOW
        additional: dict[str, Any] = {
            "value": "", "type": "default",
            "unusual": {"port": int(number or 0), "protocol": PROTOCOLS.get(int(proto or 0), proto),
                        "rarity": round(r, 3), "instanceHoursWithPort": round(profile.count("port", port), 2),
                        "events": events},
            "profiledBehavior": {"instance": profiled_summary(profile, ("port", "protocol", "peer"))},
            "anomaly": {"method": "smoothed rarity of the remote port among the instance's active hours",
                        "novelty": config.novelty, "learning": learning},
        }
        if int(number or 0) in LOG4J_PORTS:
            additional["context"] = "Possible log4j callback"
        findings.append(AnomalyFinding(
            finding_type="Behavior:EC2/NetworkPortUnusual", severity=severity, account_id=account_id,
            region="", title=f"Unusual outbound communication on port {number} from {subject}.",
            description=(f"{subject} communicated with {first['dstaddr']} on remote port {number}, which it has no "
                         f"history with in {profile.hours:.0f} active hours (rarity {r:.2f} nats)."),
            dedup_key=f"anomaly-port|{account_id}|{subject}|{port}",
            first_seen=_ts(int(port_rows["start"].min())), last_seen=_ts(int(port_rows["end"].fill_null(
                port_rows["start"]).max())), count=port_rows.height, subject=subject, score=round(r, 3),
            threshold=config.novelty, resource=_resource(subject, port_rows, inventory),
            service={"action": _action(first), "additionalInfo": additional, "resourceRole": "ACTOR",
                     "featureName": "FlowLogs"},
            learning=learning,
        ))
    return findings


def _volume_findings(account_id: str, subject: str, hour_ts: int, obs: dict[str, dict[str, int]], profile: Profile,
                     rows: Callable[[], pl.DataFrame], config: AnomalyConfig, learning: bool, inventory: Any) -> list[AnomalyFinding]:
    stats = profile.volume_stats.get(VOLUME)
    usual_max = profile.volume_max.get(VOLUME, 0.0)
    if stats is None or stats.weight < config.calibration_hours:
        return []
    limit = max(config.traffic_min_bytes, config.volume_ratio * usual_max)
    findings = []
    flagged = obs.setdefault(FLAGGED, {})
    for peer, total in obs.get(VOLUME, {}).items():
        if f"volume:{peer}" in flagged or total < limit:
            continue
        flagged[f"volume:{peer}"] = 1
        peer_rows = rows().filter(pl.col("dstaddr") == peer).sort("bytes", descending=True)
        if peer_rows.is_empty():
            continue
        first = peer_rows.row(0, named=True)
        usual = math.expm1(stats.mean)
        additional = {
            "value": "", "type": "default", "outBytes": total,
            "unusual": {"bytesOut": total, "remoteIp": peer},
            "profiledBehavior": {"instance": {
                "typicalBytesOutPerHostHour": round(usual), "maxBytesOutPerHostHour": round(usual_max),
                "thresholdBytes": round(limit), "hostHours": round(stats.weight, 1),
                **profiled_summary(profile, ("peer",))}},
            "anomaly": {"method": "egress bytes to one host in an hour against the decayed usual maximum",
                        "ratio": round(total / usual_max, 1) if usual_max else None,
                        "z": round((math.log1p(total) - stats.mean) / max(stats.std, 0.5), 2), "learning": learning},
        }
        findings.append(AnomalyFinding(
            finding_type="Behavior:EC2/TrafficVolumeUnusual",
            severity=LOW if learning else finding_type("Behavior:EC2/TrafficVolumeUnusual").severity,
            account_id=account_id, region="", title=f"Unusually large amount of traffic from {subject} to {peer}.",
            description=(f"{subject} sent {total:,} bytes to {peer} in one hour; it usually sends about "
                         f"{usual:,.0f} bytes to a host per hour and at most {usual_max:,.0f}."),
            dedup_key=f"anomaly-volume|{account_id}|{subject}|{peer}", first_seen=_ts(int(peer_rows["start"].min())),
            last_seen=_ts(int(peer_rows["end"].fill_null(peer_rows["start"]).max())), count=peer_rows.height,
            subject=subject, score=float(additional["anomaly"]["ratio"] or 0), threshold=config.volume_ratio,
            resource=_resource(subject, peer_rows, inventory),
            service={"action": _action(first), "additionalInfo": additional, "resourceRole": "ACTOR",
                     "featureName": "FlowLogs"},
            learning=learning,
        ))
    return findings


def detect_flow_anomalies(frame: pl.DataFrame, baselines: Baselines, *, config: AnomalyConfig | None = None,
                          inventory: Any = None, region: str = "", prepared: bool = False) -> list[AnomalyFinding]:
    """Score each instance-hour of a flow frame against the instance's baseline, then learn it."""
    config = config or AnomalyConfig()
    egress = frame if prepared else prepare(frame, inventory)
    if egress.is_empty():
        return []
    observed = _observations(egress)
    findings: list[AnomalyFinding] = []
    for account_id, subject, hour_ts in sorted(observed, key=lambda k: (k[2], k[0], k[1])):
        batch = observed[(account_id, subject, hour_ts)]
        profile = baselines.get(account_id, INSTANCE, subject)
        current = profile.begin_hour(hour_ts, config.half_life)
        events = sum(batch.get("port", {}).values())
        obs = profile.add_pending(batch, events) if current else batch
        learning = profile.is_learning(hour_ts, config.learning_seconds)
        if not learning or config.learning_mode == "low":
            # The instance-hour's records, read only when a port or a host is unusual (most hours
            # have none: a filter of the whole frame per instance-hour was a fifth of this model).
            rows = functools.cache(lambda s=subject, h=hour_ts: egress.filter(
                (pl.col("subject") == s) & (pl.col("hour_ts") == h)))
            found = _port_findings(account_id, subject, hour_ts, obs, profile, rows, config, learning, inventory)
            found += _volume_findings(account_id, subject, hour_ts, obs, profile, rows, config, learning, inventory)
            for f in found:
                f.region = region
            findings += found
        if not current:
            profile.learn_hour(hour_ts, batch, config.half_life, events=events)
        profile.info.setdefault("type", "Instance")
    for profile in baselines.dirty().values():
        profile.prune()
    return findings
