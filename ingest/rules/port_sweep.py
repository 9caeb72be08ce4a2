"""Outbound port sweeps (Impact:EC2/PortSweep): one instance probes one port on many public hosts.

A probe is a client record with at most `max_probe_packets` packets or one that was REJECTed: a
sweep mostly meets closed or silent hosts, while ordinary clients (a crawler, a service talking to
a CDN on 443) exchange full sessions. Public destinations only (the type's definition).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, is_public_remote, keyed_spread, network_finding, oriented, window_fire

SWEEP = "Impact:EC2/PortSweep"


def _sweep(port: int, n: int, *, packets: int = 1, prefix: str = "203.0") -> list[str]:
    return [flow(LOCAL, f"{prefix}.{i // 250}.{i % 250 + 1}", 40000 + i, port, t=i, packets=packets, size=44 * packets)
            for i in range(n)]


CASES = [
    Case("Redis probed on 150 public hosts", flows(_sweep(6379, 150)), expect=(SWEEP,),
         expect_count={SWEEP: 150}),
    Case("a crawler fetching pages from 300 hosts", flows(_sweep(443, 300, packets=40))),
    Case("probes of 150 private hosts are not a public sweep", flows(_sweep(6379, 150, prefix="10.9"))),
    Case("thirty failed connections", flows(_sweep(22, 30))),
]


@rule(source=FLOW, finding_types=(SWEEP,), cases=CASES,
      settings={"min_hosts": Setting(100, "distinct public hosts probed on one port within the window"),
                "window_seconds": Setting(1800, "sliding window"),
                "max_probe_packets": Setting(3, "a client record with at most this many packets is a probe"),
                "min_state_hosts": Setting(10, "probed hosts an object must show before a port is remembered")},
      state="per (instance, port): the first time each public host was probed within the window")
def port_sweep(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    flows_ = oriented(frame, ctx)
    probe = (pl.col("protocol").is_in([6, 17])
             & ((pl.col("packets") <= ctx.setting("max_probe_packets")) | (pl.col("action") == "REJECT"))
             & (pl.col("direction") == "OUTBOUND") & pl.col("initiator") & is_public_remote(frame, ctx))
    probes = keyed_spread(flows_, probe, group="remote_port", item="remote", minimum=ctx.setting("min_state_hosts"))
    if probes is None:
        return
    hits = window_fire(ctx, probes.select("key", pl.col("start").alias("t"), "remote"),
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_hosts"), item="remote")
    for group in group_rows(probes.filter(pl.col("key").is_in(list(hits))), ["key"], time="start",
                            evidence=FLOW_EVIDENCE):
        latest, hit = group["_latest"], hits[group["key"]]
        yield network_finding(
            ctx, group, SWEEP, dedup=group["key"], role="ACTOR", count=hit.count,
            title=f"{latest['resource_key']} is performing a port sweep on port {latest['remote_port']}.",
            description=(f"{latest['resource_key']} probed port {latest['remote_port']} on {hit.peak} public hosts "
                         f"within {ctx.setting('window_seconds') // 60} minutes, most without an answer: the "
                         "instance is looking for vulnerable services and may be compromised."),
        )
