"""Instances reaching addresses of the built-in feeds: C&C servers, mining pools, black holes, drop
points (Backdoor:EC2/C&CActivity.B, CryptoCurrency:EC2/BitcoinTool.B, Trojan:EC2/BlackholeTraffic,
Trojan:EC2/DropPoint) and Tor (UnauthorizedAccess:EC2/TorClient, TorRelay).

Only connections the instance opens count (its client records): a listed host that merely knocks
on the instance is the port-probe rule's business. Trusted addresses never match (the matcher drops
them). One finding per (instance, remote address); the latest connection's details are shown.
Tor relays are recognised by inbound connections from several Tor nodes to one local port.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, network_finding, oriented

BY_CATEGORY = {
    "c2": ("Backdoor:EC2/C&CActivity.B", "a known command and control server"),
    "crypto_mining": ("CryptoCurrency:EC2/BitcoinTool.B", "an IP address associated with cryptocurrency mining"),
    "blackhole": ("Trojan:EC2/BlackholeTraffic", "a black-hole (sinkhole) IP address"),
    "drop_point": ("Trojan:EC2/DropPoint", "a drop point holding data stolen by malware"),
}
TOR_CLIENT, TOR_RELAY = "UnauthorizedAccess:EC2/TorClient", "UnauthorizedAccess:EC2/TorRelay"
# Tor's directory authorities (tor src/app/config/auth_dirs.inc); every client contacts them.
TOR_AUTHORITIES = ("128.31.0.39", "217.196.147.77", "45.66.33.45", "66.111.2.131", "131.188.40.189",
                   "193.23.244.244", "171.25.193.9", "199.58.81.140", "204.13.164.118")
C2_IP, POOL_IP, TOR_IP = "101.35.159.51", "176.31.105.53", "185.220.101.1"
BLACKHOLE_IP, DROP_IP = "240.0.13.7", "109.237.97.180"   # Bogons feed; Androxgh0st's credential collector
TOR_PEERS = ("185.220.101.1", "185.220.101.2", "185.220.101.3", "185.220.101.4")


def _client(dst: str, port: int, *, n: int = 1) -> list[str]:
    return [flow(LOCAL, dst, 41000 + i, port, t=i * 30, packets=30, size=9000) for i in range(n)]


CASES = [
    Case("beaconing to a Sliver C2 server", flows(_client(C2_IP, 443, n=3)), expect=("Backdoor:EC2/C&CActivity.B",),
         expect_count={"Backdoor:EC2/C&CActivity.B": 3}),
    Case("a miner connects to its pool", flows(_client(POOL_IP, 3333)), expect=("CryptoCurrency:EC2/BitcoinTool.B",)),
    Case("a Tor client reaches a Tor node and an authority", flows(_client(TOR_IP, 9001) + _client("131.188.40.189", 443)),
         expect=(TOR_CLIENT,)),
    Case("a relay accepts circuits from Tor nodes", flows(
        [flow(ip, LOCAL, 50000 + i, 9001, t=i) for i, ip in enumerate(TOR_PEERS)] + _client("203.0.113.8", 443)),
         expect=(TOR_RELAY,)),
    Case("malware keeps calling its null-routed C2 address", flows(_client(BLACKHOLE_IP, 8080, n=4)),
         expect=("Trojan:EC2/BlackholeTraffic",), expect_count={"Trojan:EC2/BlackholeTraffic": 4}),
    Case("stolen keys posted to a drop point", flows(_client(DROP_IP, 80)), expect=("Trojan:EC2/DropPoint",)),
    Case("just outside the reserved range", flows(_client("223.255.255.254", 443))),
    Case("a C2 address that knocks on the instance is not the instance's doing", flows(
        [flow(C2_IP, LOCAL, 50000, 22, packets=1, size=44, action="REJECT")])),
    Case("a mining pool address on the trusted list", flows(_client(POOL_IP, 3333)), trusted_list=(POOL_IP,)),
    Case("an ordinary HTTPS server", flows(_client("203.0.113.8", 443, n=5))),
    Case("one Tor node visiting the instance's web site is not a relay", flows(
        [flow(TOR_IP, LOCAL, 50000 + i, 443, t=i) for i in range(5)])),
]


@rule(source=FLOW, finding_types=(*(t for t, _ in BY_CATEGORY.values()), TOR_CLIENT, TOR_RELAY), cases=CASES,
      settings={"relay_min_peers": Setting(3, "distinct Tor nodes connecting to one local port make a relay"),
                "relay_ignored_ports": Setting([80, 443], "web ports: Tor users browsing a site are not circuits")})
def listed_addresses(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    by_ip: dict[str, dict[str, tuple]] = {}
    for ip, hits in ctx.ip_hits.items():
        for hit in hits:
            if hit.source == "builtin":
                by_ip.setdefault(ip, {}).setdefault(hit.category, ())
                by_ip[ip][hit.category] += (hit,)
    tor = {ip for ip, cats in by_ip.items() if "tor_exit" in cats or "tor_relay" in cats}
    tor |= {ip for ip in TOR_AUTHORITIES if ip not in ctx.trusted_ips}
    wanted = set(by_ip) | tor
    if not wanted:
        return
    rows = oriented(frame, ctx).filter(pl.col("remote").is_in(list(wanted)))
    client = rows.filter((pl.col("direction") == "OUTBOUND") & pl.col("initiator"))
    for category, (finding_type, what) in BY_CATEGORY.items():
        ips = [ip for ip, cats in by_ip.items() if category in cats]
        part = client.filter(pl.col("remote").is_in(ips))
        for group in group_rows(part, ["resource_key", "remote"], time="start", evidence=FLOW_EVIDENCE):
            hits = by_ip[group["remote"]][category]
            yield network_finding(
                ctx, group, finding_type, dedup=f"{group['resource_key']}|{group['remote']}", role="ACTOR", hits=hits,
                title=f"EC2 instance {group['resource_key']} is communicating with {what} {group['remote']}.",
                description=(f"{group['resource_key']} opened {group['_count']} connection(s) to {group['remote']}, "
                             f"{what} on the feed {hits[0].list_name}."))
    tor_hits = lambda ip: by_ip.get(ip, {}).get("tor_exit") or by_ip.get(ip, {}).get("tor_relay")  # noqa: E731
    for group in group_rows(client.filter(pl.col("remote").is_in(list(tor))), ["resource_key"], time="start",
                            evidence=FLOW_EVIDENCE):
        remote = group["_latest"]["remote"]
        yield network_finding(
            ctx, group, TOR_CLIENT, dedup=group["resource_key"], role="ACTOR", hits=tor_hits(remote),
            info={"threatName": "Tor"},
            title=f"EC2 instance {group['resource_key']} is communicating with a Tor entry node.",
            description=(f"{group['resource_key']} is connecting to Tor nodes ({remote} most recently): it is "
                         "running a Tor client, which can hide what it does or where it sends data."))
    inbound = rows.filter((pl.col("direction") == "INBOUND") & pl.col("initiator") & (pl.col("action") == "ACCEPT")
                          & pl.col("remote").is_in(list(tor))
                          & ~pl.col("local_port").is_in(ctx.setting("relay_ignored_ports")))
    relays = inbound.group_by("resource_key", "local_port").agg(pl.col("remote").n_unique().alias("_peers")).filter(
        pl.col("_peers") >= ctx.setting("relay_min_peers"))
    part = inbound.join(relays, on=["resource_key", "local_port"])
    for group in group_rows(part, ["resource_key"], time="start", evidence=FLOW_EVIDENCE):
        latest = group["_latest"]
        yield network_finding(
            ctx, group, TOR_RELAY, dedup=group["resource_key"], role="ACTOR", hits=tor_hits(latest["remote"]),
            info={"threatName": "Tor"},
            title=f"EC2 instance {group['resource_key']} is behaving in a manner indicating it is a Tor relay.",
            description=(f"{latest['_peers']} Tor nodes connected to port {latest['local_port']} of "
                         f"{group['resource_key']}: it relays Tor traffic for others."))
