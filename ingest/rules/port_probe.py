"""Unprotected ports probed by known malicious hosts (Recon:EC2/PortProbeUnprotectedPort and
PortProbeEMRUnprotectedPort).

A probe is an inbound connection the VPC ACCEPTed (nothing blocked it) from an address on a
built-in scanner or malicious-host feed. REJECTed probes are background noise of the internet and
never a finding; web ports (80/443, setting `ignored_ports`) are meant to be open. Severity is Low,
High for Elasticsearch (9200/9300), and the EMR type (High) for EMR/Hadoop service ports. One finding
per instance and port; the probe details name the port and the latest probing addresses.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, network_finding, oriented, port_details

PROBE_CATEGORIES = ("scanner", "malicious", "abused", "c2")
EMR_PORTS = (8088, 8042, 8890, 8998, 9870, 16010, 18080, 19888, 20888, 50070)
HIGH_PORTS = (9200, 9300)
UNPROTECTED, EMR = "Recon:EC2/PortProbeUnprotectedPort", "Recon:EC2/PortProbeEMRUnprotectedPort"
SCANNER = "129.82.138.12"  # in the KnownScanners feed (maltrail mass_scanner.txt)


def _probe(port: int, *, src: str = SCANNER, action: str = "ACCEPT", t: int = 0) -> str:
    return flow(src, LOCAL, 51234, port, t=t, packets=1, size=44, action=action)


CASES = [
    Case("a known scanner reaches SSH", flows([_probe(22)]), expect=(UNPROTECTED,), expect_severity={UNPROTECTED: 2.0}),
    Case("a known scanner reaches Elasticsearch: High", flows([_probe(9200), _probe(9200, t=30)]),
         expect=(UNPROTECTED,), expect_severity={UNPROTECTED: 8.0}, expect_count={UNPROTECTED: 2}),
    Case("a known scanner reaches YARN on an EMR node", flows([_probe(8088)]), expect=(EMR,)),
    Case("REJECTed scanning is background noise", flows([_probe(p, action="REJECT") for p in (22, 3389, 9200, 8088)])),
    Case("a scanner on 443 is expected traffic", flows([_probe(443), _probe(80)])),
    Case("an unlisted address reaches SSH", flows([_probe(22, src="198.51.100.77")])),
    Case("a listed scanner on the trusted list", flows([_probe(22)]), trusted_list=(SCANNER,)),
    Case("the instance's own connection to a listed host is not a probe", flows(
        [flow(LOCAL, SCANNER, 51234, 22, packets=20, size=4000)])),
]


@rule(source=FLOW, finding_types=(UNPROTECTED, EMR), cases=CASES,
      settings={"ignored_ports": Setting([80, 443], "local ports meant to be reachable: probes there raise nothing"),
                "categories": Setting(list(PROBE_CATEGORIES), "built-in feed categories that make a prober known")})
def port_probe(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    categories = set(ctx.setting("categories"))
    listed = {ip: tuple(h for h in hits if h.category in categories) for ip, hits in ctx.ip_hits.items()}
    listed = {ip: hits for ip, hits in listed.items() if hits}
    if not listed:
        return
    probes = oriented(frame, ctx).filter(
        pl.col("remote").is_in(list(listed)) & (pl.col("action") == "ACCEPT") & pl.col("protocol").is_in([6, 17])
        & (pl.col("direction") == "INBOUND") & pl.col("initiator")
        & ~pl.col("local_port").is_in(ctx.setting("ignored_ports")))
    evidence = [*FLOW_EVIDENCE, "local", "remote", "local_port"]
    for group in group_rows(probes, ["resource_key", "local_port"], time="start", evidence=evidence):
        latest = group["_latest"]
        port = group["local_port"]
        emr = port in EMR_PORTS
        details = []
        for row in reversed(group["_evidence"]):
            entry = {"localPortDetails": port_details(row["local_port"]),
                     "localIpDetails": {"ipAddressV6" if ":" in row["local"] else "ipAddressV4": row["local"]},
                     "remoteIpDetails": {"ipAddressV6" if ":" in row["remote"] else "ipAddressV4": row["remote"]}}
            if entry not in details:
                details.append(entry)
        action = {"actionType": "PORT_PROBE", "portProbeAction": {"blocked": False, "portProbeDetails": details}}
        hits = listed[latest["remote"]]
        name = latest["resource_key"]
        yield network_finding(
            ctx, group, EMR if emr else UNPROTECTED, dedup=f"{latest['resource_key']}|{port}", role="TARGET",
            severity=None if emr else (8.0 if port in HIGH_PORTS else 2.0), hits=hits, action=action,
            title=(f"Unprotected EMR-related port on EC2 instance {name} is being probed." if emr else
                   f"Unprotected port on EC2 instance {name} is being probed."),
            description=(f"Port {port} of {name} accepted connections from {latest['remote']}, a known "
                         f"{hits[0].threat_names[0].lower() if hits[0].threat_names else 'malicious host'} "
                         f"({hits[0].list_name}). Nothing blocks this port: restrict it in the security group "
                         "or network ACL if it need not be public."),
        )
