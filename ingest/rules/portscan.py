"""Outbound port scans (Recon:EC2/Portscan): one instance connects to many ports of one host.

Counted on the client's records only (see _net.orient): the replies of a busy server go to many
ephemeral ports of its clients and are not a scan. A (instance, remote host) pair enters the
window state once an object shows it on `min_state_ports` distinct ports, which keeps the state of
ordinary pairs (one or two service ports) empty while still joining a scan split across objects.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, keyed_spread, network_finding, oriented, window_fire

PORTSCAN = "Recon:EC2/Portscan"
TOP_PORTS = [21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1723, 3306, 3389, 5432, 5900,
             6379, 8080, 8443, 9200, 27017, 11211, 2049, 389, 636, 873, 5985, 8000, 8888, 9090, 10000]


def _scan(target: str, ports: list[int], *, t0: int = 0, local: str = LOCAL) -> list[str]:
    # The interface's other traffic (an update check) shows which side is the instance.
    context = [flow(local, "10.0.0.2", 40100 + i, 53, t=t0, proto=17, packets=2, size=150) for i in range(3)]
    return context + [flow(local, target, 45000, p, t=t0 + i, packets=1, size=44) for i, p in enumerate(ports)]


CASES = [
    Case("nmap's top ports against one host", flows(_scan("10.0.3.9", TOP_PORTS)), expect=(PORTSCAN,),
         expect_count={PORTSCAN: len(TOP_PORTS)}),
    Case("an IPv6 host scanned", flows(_scan("2001:db8::99", TOP_PORTS, local="2600:1f18::20")),
         expect=(PORTSCAN,)),
    Case("a web server answering a load balancer's many connections", flows(
        [flow(LOCAL, "10.0.0.12", 80, 32768 + i * 7, t=i, packets=5, size=900) for i in range(300)])),
    Case("a microservice talking to eight ports of one host", flows(_scan("10.0.3.9", TOP_PORTS[:8]))),
    Case("many ports scanned slowly over hours", flows(
        [flow(LOCAL, "10.0.3.9", 45000, p, t=i * 900, packets=1, size=44) for i, p in enumerate(TOP_PORTS)])),
]


@rule(source=FLOW, finding_types=(PORTSCAN,), cases=CASES,
      settings={"min_ports": Setting(25, "distinct ports of one remote host within the window"),
                "window_seconds": Setting(900, "sliding window"),
                "min_state_ports": Setting(5, "distinct ports an object must show before a pair is remembered")},
      state="per (instance, remote host): the first time each port was tried within the window")
def portscan(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    flows_ = oriented(frame, ctx)
    client = pl.col("protocol").is_in([6, 17]) & (pl.col("direction") == "OUTBOUND") & pl.col("initiator")
    scans = keyed_spread(flows_, client, group="remote", item="remote_port", minimum=ctx.setting("min_state_ports"))
    if scans is None:
        return
    hits = window_fire(ctx, scans.select("key", pl.col("start").alias("t"), pl.col("remote_port").alias("port")),
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_ports"), item="port")
    for group in group_rows(scans.filter(pl.col("key").is_in(list(hits))), ["key"], time="start",
                            evidence=FLOW_EVIDENCE):
        latest, hit = group["_latest"], hits[group["key"]]
        yield network_finding(
            ctx, group, PORTSCAN, dedup=group["key"], role="ACTOR", count=hit.count,
            title=f"{latest['resource_key']} is performing outbound port scans against remote host {latest['remote']}.",
            description=(f"{latest['resource_key']} tried {hit.peak} different ports of {latest['remote']} within "
                         f"{ctx.setting('window_seconds') // 60} minutes, the pattern of a port scanner such as nmap. "
                         "Unless this is an authorised scan, the instance may be compromised."),
            info={"portsScanned": sorted(int(p) for p in hit.items)[:50]},
        )
