"""SSH, RDP and WinRM brute force from VPC flow logs (GuardDuty: Low when the instance is the target,
High when it is the actor).

An attempt is one TCP connection to the service port (the client's record of it). Inbound attempts
count only when ACCEPTed (a port the security group closes cannot be brute-forced); outbound
attempts count whatever the answer. A remote address that reaches `min_attempts` attempts within
`window_seconds` against one instance (or from one instance) is a brute force; the window is kept
in ctx.state, so a burst split across objects counts once, in full. One finding per instance and
role: the latest remote address replaces the earlier ones, as GuardDuty does (reference 4.4).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, network_finding, oriented, window_fire

FAMILIES = {
    "SSH": ("UnauthorizedAccess:EC2/SSHBruteForce", (22,)),
    "RDP": ("UnauthorizedAccess:EC2/RDPBruteForce", (3389,)),
    "WinRM": ("Impact:EC2/WinRMBruteForce", (5985, 5986)),
}
LOW, HIGH = 2.0, 8.0
ATTACKER = "45.95.147.10"


def _attempts(ip: str, port: int, n: int, *, t0: int = 0, action: str = "ACCEPT", step: int = 10) -> list[str]:
    return [flow(ip, LOCAL, 40000 + i, port, t=t0 + i * step, packets=12, size=2400, action=action) for i in range(n)]


def _responses(ip: str, port: int, n: int) -> list[str]:
    return [flow(LOCAL, ip, port, 40000 + i, t=i * 10, packets=11, size=3100) for i in range(n)]


CASES = [
    Case("30 accepted SSH connections from one address in 5 minutes", flows(_attempts(ATTACKER, 22, 30)),
         expect=("UnauthorizedAccess:EC2/SSHBruteForce",),
         expect_severity={"UnauthorizedAccess:EC2/SSHBruteForce": LOW},
         expect_count={"UnauthorizedAccess:EC2/SSHBruteForce": 30}),
    Case("the instance brute-forces RDP on a remote host", flows(
        [flow(LOCAL, "198.51.100.40", 50000 + i, 3389, t=i * 5) for i in range(40)]),
         expect=("UnauthorizedAccess:EC2/RDPBruteForce",),
         expect_severity={"UnauthorizedAccess:EC2/RDPBruteForce": HIGH}),
    Case("WinRM over HTTPS", flows(_attempts(ATTACKER, 5986, 25)), expect=("Impact:EC2/WinRMBruteForce",)),
    Case("IPv6 attacker against an IPv6 instance", flows(
        [flow("2001:db8:bad::7", "2600:1f18:1234:5600::20", 40000 + i, 22, t=i * 10) for i in range(30)]
        + [flow("2600:1f18:1234:5600::20", "2606:4700::1111", 41000, 443)]),
         expect=("UnauthorizedAccess:EC2/SSHBruteForce",)),
    Case("an administrator's five SSH sessions", flows(_attempts("198.51.100.5", 22, 5, step=600))),
    Case("SSH on port 2222 is not SSHBruteForce (port 22 only)", flows(_attempts(ATTACKER, 2222, 40))),
    Case("REJECTed SSH attempts: the port is closed", flows(_attempts(ATTACKER, 22, 60, action="REJECT"))),
    Case("the server's replies alone are not attempts", flows(_responses(ATTACKER, 22, 40))),
    Case("a load balancer's TCP health checks on port 22", flows(
        [flow("10.0.250.10", LOCAL, 40000 + i, 22, t=i * 10, packets=3, size=180) for i in range(120)])),
    Case("30 connections spread over 5 hours", flows(_attempts(ATTACKER, 22, 30, step=600))),
]


@rule(source=FLOW, finding_types=tuple(t for t, _ in FAMILIES.values()), cases=CASES,
      settings={"min_attempts": Setting(20, "connections from one remote address within the window"),
                "window_seconds": Setting(600, "sliding window for counting attempts"),
                "min_state_attempts": Setting(3, "attempts an object must show before a remote address is "
                                                 "remembered (keeps one-off internet knocks out of the state)"),
                "min_packets": Setting(5, "packets of a client record that tried to log in (health checks: 3)")},
      state="per (instance, remote address, service, role): attempts per minute of the last window")
def brute_force(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    ports = {p: fam for fam, (_, ps) in FAMILIES.items() for p in ps}
    service = (pl.col("protocol") == 6) & (pl.col("dstport").is_in(list(ports)) | pl.col("srcport").is_in(list(ports)))
    # One filter over the oriented frame (each filter copies all its columns).
    attempts = oriented(frame, ctx).filter(
        service & pl.col("initiator") & (pl.col("packets") >= ctx.setting("min_packets")) & (
        ((pl.col("direction") == "INBOUND") & pl.col("local_port").is_in(list(ports)) & (pl.col("action") == "ACCEPT"))
        | ((pl.col("direction") == "OUTBOUND") & pl.col("remote_port").is_in(list(ports)))))
    if attempts.is_empty():
        return
    attempts = attempts.with_columns(
        pl.when(pl.col("direction") == "INBOUND").then(pl.lit("TARGET")).otherwise(pl.lit("ACTOR")).alias("role"),
        pl.when(pl.col("direction") == "INBOUND").then(pl.col("local_port")).otherwise(pl.col("remote_port"))
        .replace_strict(ports, return_dtype=pl.String).alias("family"),
    ).with_columns(pl.concat_str("family", "role", "resource_key", "remote", separator="|").alias("key"))
    hits = window_fire(ctx, attempts.select("key", pl.col("start").alias("t")),
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_attempts"),
                       min_state=ctx.setting("min_state_attempts"))
    if not hits:
        return
    fired = attempts.filter(pl.col("key").is_in(list(hits)))
    for group in group_rows(fired, ["key"], time="start", evidence=FLOW_EVIDENCE):
        latest, hit = group["_latest"], hits[group["key"]]
        finding_type = FAMILIES[latest["family"]][0]
        actor = latest["role"] == "ACTOR"
        target = latest["remote"] if actor else latest["resource_key"]
        who = f"{latest['remote']}" if not actor else latest["resource_key"]
        yield network_finding(
            ctx, group, finding_type, dedup=f"{latest['resource_key']}|{latest['role']}", role=latest["role"],
            severity=HIGH if actor else LOW, count=hit.count,
            title=f"{who} is performing {latest['family']} brute force attacks against {target}.",
            description=(f"{who} made {hit.peak} {latest['family']} connection attempts to {target} within "
                         f"{ctx.setting('window_seconds') // 60} minutes"
                         + (": this instance is attacking another host and may be compromised." if actor else
                            ". The instance is the target; check its authentication logs.")),
        )
