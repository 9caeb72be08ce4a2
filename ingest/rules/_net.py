"""Shared pieces of the network rules: flow orientation, sliding windows kept in ctx.state, and the
GuardDuty-shaped resource/action blocks. Not a rule module (the leading underscore keeps the
registry from importing it as one).

Orientation. A VPC flow record is written by one network interface; its own address is on one side.
`orient()` names that side `local`: from `flow-direction` when the custom format has it, else the
private side when exactly one side is private, else the side the interface sees most often in the
frame (IPv6 and VPC-internal traffic). The initiator of a connection is guessed from the ports
(a client's ephemeral port is higher than the service port), because a TCP connection appears as
two records per interface and only the client's record says which port was attacked.

Windows. `window_fire()` keeps, per key, the occurrences of the last `window` seconds (minute
buckets, or the first time each distinct item was seen) in ctx.state, so an attack split across
objects and workers is judged as one burst, and reports each occurrence exactly once: the whole
burst when the threshold is first crossed, then only the new occurrences while it goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ingest.rules import Detection, RuleContext, threat_service

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
FLOW_EVIDENCE = ["interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start",
                 "end", "action"]
DNS_EVIDENCE = ["query_time", "query_name", "query_type", "rcode", "srcaddr", "instance_id", "vpc_id"]
PORT_NAMES = {22: "SSH", 25: "SMTP", 53: "DNS", 80: "HTTP", 443: "HTTPS", 853: "DNS-over-TLS", 3389: "RDP",
              5985: "WinRM", 5986: "WinRM", 9200: "Elasticsearch", 9300: "Elasticsearch", 8088: "YARN"}

_PRIVATE_V4 = (r"^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.|"
               r"169\.254\.|127\.|0\.)")
_PRIVATE_V6 = r"^(?i)(f[cd][0-9a-f]{2}:|fe[89ab][0-9a-f]:|::1$|::ffff:(10|127|192\.168)\.)"


# The text columns the flow rules group, join and choose sides by. Not the action or the account: a
# value of at most 12 bytes is held inline, compared and hashed about as fast as an id, and encoding
# one such column cost more (2.7 ms per 200k records) than its uses saved.
ENCODED_COLUMNS = ("srcaddr", "dstaddr", "interface_id", "instance_id")
DIRECTION = pl.Enum(["INBOUND", "OUTBOUND"])


def addresses_encoded(frame: pl.DataFrame) -> pl.DataFrame:
    """A flow frame whose addresses, interfaces and instances are categorical, on categories of the
    frame's own (freed with it, where the global ones only grow): the rules' group-bys, `is_in`,
    comparisons and side choices then work on integer ids, each record's text hashed once here
    instead of once per pass (a group-by on an address 2x faster, a side choice 4x)."""
    encoded = pl.Categorical(pl.Categories.random())
    return frame.with_columns(pl.col(*ENCODED_COLUMNS).cast(encoded))


def is_private(col: str | pl.Expr) -> pl.Expr:
    expr = (pl.col(col) if isinstance(col, str) else col).cast(pl.String)
    return expr.str.contains(_PRIVATE_V4) | expr.str.contains(_PRIVATE_V6)


def is_public(col: str | pl.Expr) -> pl.Expr:
    return ~is_private(col)


def frame_addresses(frame: pl.DataFrame, columns: tuple[str, ...] = ("srcaddr", "dstaddr")) -> pl.Series:
    """The distinct non-null values of `columns` (a flow frame's addresses)."""
    return pl.concat([frame[c] for c in columns]).drop_nulls().unique()


def private_addresses(frame: pl.DataFrame, columns: tuple[str, ...], test: Any,
                      values: pl.Series | None = None) -> pl.Series:
    """The distinct values of `columns` for which `test` (an address column -> bool Expr) holds,
    imploded for `is_in`: one regex per distinct address instead of one per row. `values`: those
    distinct values (`frame_addresses`), when already known."""
    if values is None:
        values = frame_addresses(frame, columns)
    return values.filter(pl.select(test(pl.lit(values)).fill_null(False)).to_series()).implode()


def orient(frame: pl.DataFrame, private: pl.Series | None = None) -> pl.DataFrame:
    """Add local/remote addresses and ports, direction, initiator, resource_key and remote_private
    (see module doc). `private`: the frame's private addresses (`private_addresses`), when known."""
    if frame.is_empty():
        return frame.with_columns(
            *(pl.lit(None, dtype=pl.String).alias(c) for c in ("local", "remote", "resource_key")),
            pl.lit(None, dtype=DIRECTION).alias("direction"),
            *(pl.lit(None, dtype=pl.Int64).alias(c) for c in ("local_port", "remote_port")),
            *(pl.lit(None, dtype=pl.Boolean).alias(c) for c in ("initiator", "remote_private")))
    # A frame has few distinct addresses (hosts talk to the same peers): test each once, then a
    # hash lookup per row (the two regexes per row cost more than the rest of orient). Each side's
    # lookup runs once, into a column: the conditions below and the rules' remote_private reuse it.
    if private is None:
        private = private_addresses(frame, ("srcaddr", "dstaddr"), is_private)
    frame = frame.with_columns(pl.col("srcaddr").is_in(private).alias("_src_private"),
                               pl.col("dstaddr").is_in(private).alias("_dst_private"))
    src_priv, dst_priv = pl.col("_src_private"), pl.col("_dst_private")
    # Each test is null where it cannot tell; the first that can decides.
    src_local = pl.when(src_priv & ~dst_priv).then(True).when(dst_priv & ~src_priv).then(False)
    if frame["flow_direction"].null_count() < frame.height:  # only custom formats write flow-direction
        direction = pl.col("flow_direction")
        src_local = pl.coalesce(pl.when(direction == "egress").then(True).when(direction == "ingress").then(False),
                                src_local)
    src_local = frame.select(src_local.alias("_src_local")).to_series()
    ambiguous = src_local.is_null().arg_true()
    if len(ambiguous):
        # Both sides private (VPC-internal) or both public (IPv6): the interface's own address is the
        # one it sees most often, counted over the whole frame. Only the ambiguous rows' addresses
        # are counted, on three columns, and their answers written back by row number: the rows
        # keep their order, and the frame's other columns are not copied for a handful of rows.
        rows = frame.select("interface_id", "srcaddr", "dstaddr").gather(ambiguous)
        wanted = pl.concat([rows["srcaddr"], rows["dstaddr"]]).unique().implode()
        seen = pl.concat([
            frame.select(pl.col("interface_id"), pl.col("srcaddr").alias("addr")).filter(pl.col("addr").is_in(wanted)),
            frame.select(pl.col("interface_id"), pl.col("dstaddr").alias("addr")).filter(pl.col("addr").is_in(wanted)),
        ]).group_by("interface_id", "addr").len("_n")
        decided = (rows
                   .join(seen.rename({"addr": "srcaddr", "_n": "_src_n"}), on=["interface_id", "srcaddr"], how="left",
                         nulls_equal=True, maintain_order="left")
                   .join(seen.rename({"addr": "dstaddr", "_n": "_dst_n"}), on=["interface_id", "dstaddr"], how="left",
                         nulls_equal=True, maintain_order="left")
                   .select(pl.col("_src_n") > pl.col("_dst_n")).to_series())
        src_local = src_local.scatter(ambiguous, decided)
    frame = frame.with_columns(src_local)
    ported = pl.col("protocol").is_in([6, 17])
    return frame.with_columns(
        pl.when("_src_local").then(pl.col("srcaddr")).otherwise(pl.col("dstaddr")).alias("local"),
        pl.when("_src_local").then(pl.col("dstaddr")).otherwise(pl.col("srcaddr")).alias("remote"),
        pl.when("_src_local").then(pl.col("srcport")).otherwise(pl.col("dstport")).alias("local_port"),
        pl.when("_src_local").then(pl.col("dstport")).otherwise(pl.col("srcport")).alias("remote_port"),
        pl.when("_src_local").then(pl.lit("OUTBOUND", dtype=DIRECTION)).otherwise(pl.lit("INBOUND", dtype=DIRECTION))
        .alias("direction"),
        (~ported | (pl.col("dstport") <= pl.col("srcport"))).alias("initiator"),
        pl.when("_src_local").then(dst_priv).otherwise(src_priv).alias("remote_private"),
    ).with_columns(
        pl.coalesce("instance_id", "interface_id", "local").alias("resource_key"),
    ).drop("_src_local", "_src_private", "_dst_private")


def oriented(frame: pl.DataFrame, ctx: RuleContext) -> pl.DataFrame:
    """`orient(frame)`, computed once per frame and shared by every flow rule through its context
    (the interface's address counts need the whole frame, not a rule's subset)."""
    cache = ctx.__dict__.setdefault("_oriented", {})
    if cache.get("frame") is not frame:
        # ctx.addresses: the pipeline's distinct addresses of this frame, found for the intel lookup.
        private = private_addresses(frame, ("srcaddr", "dstaddr"), is_private, ctx.addresses)
        cache["frame"], cache["value"] = frame, orient(frame, private)
    return cache["value"]


def is_public_remote(frame: pl.DataFrame, ctx: RuleContext) -> pl.Expr:
    """`is_public("remote")` on `oriented(frame, ctx)`: orientation's own lookup of each side in the
    frame's private addresses, kept as its remote_private column."""
    oriented(frame, ctx)
    return ~pl.col("remote_private")


# --- sliding windows in ctx.state ---------------------------------------------------------------

@dataclass
class WindowHit:
    key: str
    count: int       # occurrences to report with this detection (each occurrence reported once)
    peak: int        # the largest in-window total seen (connections, packets or distinct items)
    items: list[Any]  # distinct items in the window (distinct mode), most recent last


def keyed_spread(flows: pl.DataFrame, condition: pl.Expr, *, group: str, item: str,
                 minimum: int) -> pl.DataFrame | None:
    """The rows passing `condition`, keyed `key` = resource|group, of the keys with at least
    `minimum` distinct `item`s (e.g. a remote host's ports, a port's hosts); None when there are none.
    A key's items are some of its group's: groups with too few items in all are found on two columns
    (a filter copies every column it keeps) and dropped before the rows are keyed."""
    busy = (flows.select(group, item, condition.alias("_c")).filter("_c")
            .group_by(group).agg(pl.col(item).n_unique().alias("_n"))
            .filter(pl.col("_n") >= minimum))
    if busy.is_empty():
        return None
    rows = flows.filter(condition & pl.col(group).is_in(busy[group].implode())).with_columns(
        pl.concat_str("resource_key", pl.col(group).cast(pl.String), separator="|").alias("key"))
    wide = rows.group_by("key").agg(pl.col(item).n_unique().alias("_n")).filter(pl.col("_n") >= minimum)
    return rows.filter(pl.col("key").is_in(wide["key"].implode()))


def window_fire(ctx: RuleContext, batch: pl.DataFrame, *, window: int, threshold: float, weight: str | None = None,
                item: str | None = None, cap: int = 2000, min_state: float = 0,
                records: str | None = None) -> dict[str, WindowHit]:
    """Keys of `batch` (columns key, t [epoch s], optional weight / item) whose sliding-window total
    reaches `threshold`, with state carried across objects. Counts mode sums `weight` (1 per row by
    default); distinct mode (`item`) counts distinct items. Keys whose batch total is below
    `min_state` and which have no state yet are not remembered (bounds the state of benign keys).
    `records`: a column of how many records each row stands for, when the batch is already summed
    (per key and minute, say); by default each row is one."""
    if batch.is_empty():
        return {}
    batch = batch.with_columns((pl.col("t") // 60 * 60).alias("_m"))
    rows = pl.col(records).sum() if records else pl.len()
    per_minute = batch.group_by("key", "_m").agg(rows.alias("r"), (pl.col(weight).sum() if weight else rows).alias("w"))
    per_key: dict[str, dict[str, Any]] = {}
    for key, minute, r, w in per_minute.iter_rows():
        entry = per_key.setdefault(key, {"b": {}, "i": {}})
        entry["b"][minute] = (r, w)
    if item:
        firsts = batch.group_by("key", item).agg(pl.col("t").min())
        for key, value, t in firsts.iter_rows():
            per_key[key]["i"][str(value)] = t
    stored = ctx.state_get(per_key)
    out: dict[str, WindowHit] = {}
    for key, fresh in per_key.items():
        old = stored.get(key)
        batch_total = len(fresh["i"]) if item else sum(w for _, w in fresh["b"].values())
        if old is None and batch_total < min_state:
            continue
        old = old or {"b": [], "i": {}, "f": None}
        buckets: dict[int, list[float]] = {int(m): [r, w] for m, r, w in old["b"]}
        for m, (r, w) in fresh["b"].items():
            cur = buckets.setdefault(int(m), [0, 0])
            cur[0] += r
            cur[1] += w
        items = dict(old["i"])
        for value, t in fresh["i"].items():
            items[value] = min(t, items.get(value, t))
        latest = max(buckets)
        horizon = latest - window
        buckets = {m: v for m, v in buckets.items() if m >= horizon}
        items = dict(sorted(((v, t) for v, t in items.items() if t >= horizon), key=lambda kv: kv[1])[-cap:])
        series = sorted(items.values()) if item else sorted((m, v[1]) for m, v in buckets.items())
        peak = _max_window(series, window, distinct=bool(item))
        fired = old.get("f")
        active = fired is not None and min(fresh["b"]) - fired <= window
        new_records = sum(r for r, _ in fresh["b"].values())
        if peak >= threshold or active:
            count = new_records if active else int(sum(v[0] for v in buckets.values()))
            out[key] = WindowHit(key, count, int(peak), list(items))
            fired = latest
        ctx.state_put(key, {"b": [[m, v[0], v[1]] for m, v in sorted(buckets.items())], "i": items, "f": fired})
    return out


def _max_window(series: list, window: int, *, distinct: bool) -> float:
    """Largest total of any `window`-second span of a time-sorted series ((t, w) pairs, or times)."""
    best, total, lo = 0.0, 0.0, 0
    points = [(t, 1) for t in series] if distinct else series
    for t, w in points:
        total += w
        while points[lo][0] < t - window:
            total -= points[lo][1]
            lo += 1
        best = max(best, total)
    return best


# --- finding blocks -------------------------------------------------------------------------------

def _ip_details(ip: str | None) -> dict[str, str]:
    if not ip:
        return {}
    return {"ipAddressV6": ip} if ":" in ip else {"ipAddressV4": ip}


def port_details(port: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"port": port}
    if port in PORT_NAMES:
        out["portName"] = PORT_NAMES[port]
    return out


def instance_resource(ctx: RuleContext, latest: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """GuardDuty's Instance resource for a flow or DNS row, and a readable name for titles."""
    local = latest.get("local") or latest.get("srcaddr")
    v6 = bool(local and ":" in local)
    resource = ctx.inventory.instance_resource(instance_id=latest.get("instance_id"),
                                               eni=latest.get("interface_id"), ip=None if v6 else local)
    details = resource["instanceDetails"]
    if v6:
        nics = details.setdefault("networkInterfaces", [{}])
        nics[0].setdefault("ipv6Addresses", [local])
    name = details.get("instanceId") or latest.get("interface_id") or local or "unknown"
    return resource, name


def to_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value), UTC)


def connection_action(latest: dict[str, Any], *, blocked: bool | None = None) -> dict[str, Any]:
    return {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
        "connectionDirection": latest.get("direction") or "UNKNOWN",
        "protocol": PROTOCOLS.get(latest.get("protocol"), str(latest.get("protocol"))),
        "blocked": latest.get("action") == "REJECT" if blocked is None else blocked,
        "localIpDetails": _ip_details(latest.get("local")),
        "localPortDetails": port_details(latest.get("local_port")),
        "remoteIpDetails": _ip_details(latest.get("remote")),
        "remotePortDetails": port_details(latest.get("remote_port")),
        "localNetworkInterface": latest.get("interface_id"),
    }}


def network_finding(ctx: RuleContext, group: dict[str, Any], finding_type: str, *, dedup: str, title: str,
                    description: str, role: str, count: int | None = None, severity: float | None = None,
                    hits: tuple | None = None, info: dict[str, Any] | None = None,
                    action: dict[str, Any] | None = None) -> Detection:
    """A flow-log Detection from a group_rows() group (the latest row gives the details)."""
    latest = group["_latest"]
    resource, _ = instance_resource(ctx, latest)
    service: dict[str, Any] = {"resourceRole": role, "action": action or connection_action(latest)}
    if hits:
        service.update(threat_service(hits))
    if info:
        service.setdefault("additionalInfo", {}).update(info)
    return Detection(
        type=finding_type, dedup_key=dedup, title=title, description=description,
        first_seen=to_dt(group["_first"]), last_seen=to_dt(group["_last"]),
        count=group["_count"] if count is None else count, resource=resource, service=service,
        severity=severity, evidence=group["_evidence"],
    )


def dns_action(latest: dict[str, Any], domain: str, ctx: RuleContext) -> dict[str, Any]:
    return {"actionType": "DNS_REQUEST", "dnsRequestAction": {
        "domain": domain, "domainWithSuffix": registrable(domain), "protocol": latest.get("transport") or "UDP",
        "blocked": False, "vpcOwnerAccountId": latest.get("account_id") or ctx.aws_account_id}}


# Second-level suffixes under which names are registered one level deeper (a small, common subset
# of the public suffix list: enough to find the registrable domain of names in resolver logs).
MULTI_SUFFIXES = frozenset({
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.jp", "ne.jp", "or.jp", "co.nz",
    "com.br", "com.cn", "net.cn", "org.cn", "com.tw", "co.in", "co.kr", "com.mx", "com.tr", "co.za", "com.sg",
    "com.hk", "com.ar", "co.il", "ph.tn", "jp.tn", "com.ru", "com.ua", "co.id", "com.my", "com.pl",
})


def registrable(name: str) -> str:
    labels = name.rstrip(".").split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in MULTI_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def registrable_expr(col: str = "query_name") -> pl.Expr:
    """Vectorised `registrable()`: the last two labels, or three under a MULTI_SUFFIXES suffix."""
    parts = pl.col(col).str.split(".")
    last2 = parts.list.slice(-2, 2).list.join(".")
    last3 = parts.list.slice(-3, 3).list.join(".")
    return pl.when(last2.is_in(list(MULTI_SUFFIXES)) & (parts.list.len() >= 3)).then(last3).otherwise(last2)


def entropy_expr(col: str) -> pl.Expr:
    """Shannon entropy (bits per character) of each string, vectorised."""
    counts = pl.col(col).str.split("").list.eval(pl.element().unique_counts().cast(pl.Float64))
    lengths = pl.col(col).str.len_chars().cast(pl.Float64)
    return counts.list.eval(pl.element() * pl.element().log(2)).list.sum().truediv(lengths).neg() + lengths.log(2)

