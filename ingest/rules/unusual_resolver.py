"""DefenseEvasion:EC2/UnusualDNSResolver, UnusualDoHActivity, UnusualDoTActivity: an instance
starts using a public DNS resolver (plain DNS on 53, DNS-over-TLS on 853, DNS-over-HTTPS to a known
public DoH service) it has no history with.

History lives in ctx.state: per instance, when it was first seen at all and which public resolvers
it has used (plain, DoT and DoH separately). During an instance's first `learning_seconds` every
resolver it uses is learned silently: a fleet configured to use 8.8.8.8 is not a finding, a web
server that suddenly tunnels its lookups to a public DoH service is.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, is_public_remote, network_finding, oriented

TYPES = {"DNS": "DefenseEvasion:EC2/UnusualDNSResolver", "DoH": "DefenseEvasion:EC2/UnusualDoHActivity",
         "DoT": "DefenseEvasion:EC2/UnusualDoTActivity"}
# Well-known public DNS-over-HTTPS services (Cloudflare, Google, Quad9, OpenDNS, AdGuard, NextDNS).
DOH_SERVERS = ("1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9", "149.112.112.112", "208.67.222.222",
               "208.67.220.220", "94.140.14.14", "94.140.15.15", "45.90.28.0", "45.90.30.0",
               "2606:4700:4700::1111", "2606:4700:4700::1001", "2001:4860:4860::8888", "2001:4860:4860::8844",
               "2620:fe::fe", "2620:fe::9")
DAY = 86400


def _history(days: int = 2) -> list[str]:
    # The instance's ordinary traffic for two days: the VPC resolver and web services.
    return [flow(LOCAL, dst, 40000 + h, port, t=h * 3600, proto=proto, packets=4, size=400)
            for h in range(days * 24) for dst, port, proto in (("10.0.0.2", 53, 17), ("203.0.113.50", 443, 6))]


CASES = [
    Case("after two quiet days, lookups go to a public resolver", flows(
        [*_history(), flow(LOCAL, "8.8.8.8", 53000, 53, t=2 * DAY + 60, proto=17, packets=2, size=140)]),
         expect=(TYPES["DNS"],)),
    Case("after two quiet days, DNS over HTTPS to Cloudflare", flows(
        _history() + [flow(LOCAL, "1.1.1.1", 53000 + i, 443, t=2 * DAY + i, packets=12, size=3000) for i in range(5)]),
         expect=(TYPES["DoH"],)),
    Case("after two quiet days, DNS over TLS", flows(
        [*_history(), flow(LOCAL, "9.9.9.9", 53000, 853, t=2 * DAY, packets=12, size=3000)]),
         expect=(TYPES["DoT"],)),
    Case("a fleet that always used a public resolver", flows(
        [flow(LOCAL, "8.8.8.8", 40000 + h, 53, t=h * 3600, proto=17, packets=2, size=140) for h in range(72)])),
    Case("a new instance's first lookups", flows(
        [flow(LOCAL, "1.1.1.1", 53000 + i, 53, t=i, proto=17, packets=2, size=140) for i in range(3)])),
    Case("the VPC resolver is not a public one", flows(
        [*_history(), flow(LOCAL, "10.0.0.2", 53000, 53, t=2 * DAY + 60, proto=17)])),
]


@rule(source=FLOW, finding_types=tuple(TYPES.values()), cases=CASES,
      settings={"learning_seconds": Setting(DAY, "resolvers used in an instance's first day are its history"),
                "doh_servers": Setting(list(DOH_SERVERS), "addresses of public DNS-over-HTTPS services")},
      state="per instance: first time seen; per instance and protocol: public resolvers used")
def unusual_resolver(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    flows_ = oriented(frame, ctx)
    firsts = dict(flows_.group_by("resource_key").agg(pl.col("start").min()).iter_rows())
    seen = ctx.state_get([f"seen|{k}" for k in firsts])
    since = {}
    for key, first in firsts.items():
        since[key] = seen.get(f"seen|{key}", int(first))
        if f"seen|{key}" not in seen:
            ctx.state_put(f"seen|{key}", int(first))
    port, proto = pl.col("remote_port"), pl.col("protocol")
    kind = (pl.when(port == 53).then(pl.lit("DNS"))
            .when((port == 853) & (proto == 6)).then(pl.lit("DoT"))
            .when((port == 443) & pl.col("remote").is_in(ctx.setting("doh_servers"))).then(pl.lit("DoH")))
    lookup = ((pl.col("direction") == "OUTBOUND") & pl.col("initiator") & is_public_remote(frame, ctx)
              & proto.is_in([6, 17]) & kind.is_not_null())
    # The pairs from the few columns they need (a filter copies every column it keeps); the lookups'
    # full rows are gathered only when a resolver is new (rare).
    lookups = (flows_.select("resource_key", "remote", "remote_port", "protocol", "start", lookup.alias("_lookup"))
               .filter("_lookup").with_columns(kind.alias("kind")))
    if lookups.is_empty():
        return
    pairs = lookups.group_by("resource_key", "kind", "remote").agg(pl.col("start").min().alias("_t"))
    known = ctx.state_get({f"{k}|{r}" for r, k in pairs.select("resource_key", "kind").unique().iter_rows()})
    new_pairs = []
    learning = ctx.setting("learning_seconds")
    for resource, kind_, remote, t in pairs.sort("_t").iter_rows():
        state_key = f"{kind_}|{resource}"
        resolvers = known.setdefault(state_key, {})
        if remote in resolvers:
            continue
        resolvers[remote] = int(t)
        ctx.state_put(state_key, resolvers)
        if int(t) - since[resource] >= learning:
            new_pairs.append((resource, kind_, remote))
    if not new_pairs:
        return
    lookups = flows_.filter(lookup).with_columns(kind.alias("kind"))
    keys = ["resource_key", "kind", "remote"]
    fresh = lookups.join(pl.DataFrame(new_pairs, schema={k: lookups.schema[k] for k in keys}, orient="row"), on=keys)
    for group in group_rows(fresh, ["resource_key", "kind"], time="start", evidence=FLOW_EVIDENCE):
        latest = group["_latest"]
        what = {"DNS": "a public DNS resolver", "DoH": "a DNS-over-HTTPS server",
                "DoT": "a DNS-over-TLS server"}[group["kind"]]
        yield network_finding(
            ctx, group, TYPES[group["kind"]], dedup=f"{group['resource_key']}|{group['kind']}", role="ACTOR",
            title=f"EC2 instance {group['resource_key']} is communicating with {what} {latest['remote']} it has no "
                  "history with.",
            description=(f"{group['resource_key']} started resolving names through {latest['remote']} instead of the "
                         "VPC resolver: this bypasses Route 53 Resolver logging and DNS firewalls and is a common "
                         "way for malware to hide its lookups."),
        )
