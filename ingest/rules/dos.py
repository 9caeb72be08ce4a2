"""Outbound denial of service (Backdoor:EC2/DenialOfService.*): a flood of small packets from an
instance to one remote host.

Volume is packets within a sliding window per (instance, remote host, variant), kept in
ctx.state. Floods are made of small packets; bulk transfers (backups, downloads, QUIC video) of
large ones, so `max_mean_packet_bytes` separates them. Variants: DNS (UDP to 53), UdpOnTcpPorts (UDP
to a port only TCP services use; 80/443 excluded because QUIC is UDP 443 and AWS's own tester
floods UDP 80 to produce the plain Udp type), Udp, Tcp, and UnusualProtocol (anything but TCP/UDP).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, network_finding, oriented, window_fire

PREFIX = "Backdoor:EC2/DenialOfService."
TCP_ONLY_PORTS = [21, 22, 23, 25, 110, 143, 445, 1433, 3306, 3389, 5432, 6379, 8080]
VICTIM = "198.51.100.200"


def _flood(dport: int, *, proto: int = 17, packets: int = 60000, size: int = 60, n: int = 5) -> list[str]:
    return [flow(LOCAL, VICTIM, 40000 + i, dport, t=i * 60, proto=proto, packets=packets, size=packets * size)
            for i in range(n)]


CASES = [
    Case("UDP flood to a web port", flows(_flood(80)), expect=(PREFIX + "Udp",), expect_count={PREFIX + "Udp": 5}),
    Case("a flood of many records per minute counts every record", flows(
        [f for i in range(4) for f in _flood(80, packets=20000, n=4)]), expect=(PREFIX + "Udp",),
         expect_count={PREFIX + "Udp": 16}),
    Case("SYN flood", flows(_flood(443, proto=6)), expect=(PREFIX + "Tcp",)),
    Case("DNS flood", flows(_flood(53)), expect=(PREFIX + "Dns",)),
    Case("UDP to the MySQL port", flows(_flood(3306)), expect=(PREFIX + "UdpOnTcpPorts",)),
    Case("IGMP flood", flows([f.replace(" 17 ", " 2 ") for f in _flood(0)]), expect=(PREFIX + "UnusualProtocol",)),
    Case("a 20 GB backup upload: large packets", flows(_flood(443, proto=6, size=1400))),
    Case("QUIC streaming: large UDP packets", flows(_flood(443, size=1200))),
    Case("a busy but modest DNS client", flows(_flood(53, packets=2000))),
]


def _variant() -> pl.Expr:
    proto, port = pl.col("protocol"), pl.col("remote_port")
    return (pl.when((proto == 17) & (port == 53)).then(pl.lit("Dns"))
            .when((proto == 17) & port.is_in(TCP_ONLY_PORTS)).then(pl.lit("UdpOnTcpPorts"))
            .when(proto == 17).then(pl.lit("Udp"))
            .when(proto == 6).then(pl.lit("Tcp"))
            .otherwise(pl.lit("UnusualProtocol")))


VARIANTS = ("Dns", "UdpOnTcpPorts", "Udp", "Tcp", "UnusualProtocol")


@rule(source=FLOW, finding_types=tuple(PREFIX + v for v in VARIANTS), cases=CASES,
      settings={"min_packets": Setting(200000, "outbound packets to one host within the window"),
                "window_seconds": Setting(300, "sliding window"),
                "max_mean_packet_bytes": Setting(400, "larger average packets are a transfer, not a flood")},
      state="per (instance, remote host, variant): packets per minute of the last window")
def denial_of_service(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    flows = oriented(frame, ctx)
    max_bytes = ctx.setting("max_mean_packet_bytes")
    sent_small = ((pl.col("direction") == "OUTBOUND") & (pl.col("packets") > 0)
                  & (pl.col("bytes") <= pl.col("packets") * max_bytes))
    # A flood needs volume: only (interface, remote host) pairs that sent a tenth of the threshold
    # in this object. A pair's packets are part of its remote host's: hosts below the volume are
    # dropped first (a one-column group-by), and only their rows are grouped per pair. Only the
    # columns the volume test reads: the filter copies them, not the whole frame.
    floor = ctx.setting("min_packets") // 10
    sent = flows.select("interface_id", "remote", "packets", sent_small.alias("_sent")).filter("_sent")
    loud = sent.group_by("remote").agg(pl.col("packets").sum().alias("_p")).filter(pl.col("_p") >= floor)
    if loud.is_empty():  # the usual case
        return
    sent = sent.filter(pl.col("remote").is_in(loud["remote"].implode(), nulls_equal=True))
    heavy = sent.group_by("interface_id", "remote").agg(pl.col("packets").sum().alias("_p")).filter(
        pl.col("_p") >= floor)
    if heavy.is_empty():
        return
    # The heavy pairs' rows. A semi join keeps the frame's row order; the host test first leaves it
    # few rows to probe.
    flooding = sent_small & pl.col("remote").is_in(heavy["remote"].implode(), nulls_equal=True)

    def flood_rows(columns: list[str]) -> pl.DataFrame:
        return (flows.select(*columns, flooding.alias("_flood")).filter("_flood").drop("_flood")
                .join(heavy.select("interface_id", "remote"), on=["interface_id", "remote"], how="semi",
                      nulls_equal=True).with_columns(_variant().alias("variant")))

    key = pl.concat_str("variant", "resource_key", "remote", separator="|").alias("key")

    # Heavy pairs can be busy benign hosts (a quarter of a frame's rows): the window needs only each
    # key's packets and records per minute, so it reads those sums, on the few columns that make the
    # key, and the rows themselves are read again only for the keys that fire.
    out = flood_rows(["interface_id", "protocol", "remote_port", "resource_key", "remote", "start", "packets"])
    if out.is_empty():
        return
    minutes = out.group_by("variant", "resource_key", "remote", (pl.col("start") // 60 * 60).alias("t")).agg(
        pl.col("packets").sum(), pl.len().alias("records")).select(key, "t", "packets", "records")
    hits = window_fire(ctx, minutes, weight="packets", records="records",
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_packets"))
    if not hits:
        return
    out = flood_rows(flows.columns).with_columns(key).filter(pl.col("key").is_in(list(hits)))
    for group in group_rows(out, ["key"], time="start", evidence=FLOW_EVIDENCE):
        latest, hit = group["_latest"], hits[group["key"]]
        yield network_finding(
            ctx, group, PREFIX + latest["variant"], dedup=f"{latest['resource_key']}|{latest['variant']}",
            role="ACTOR", count=hit.count,
            title=f"{latest['resource_key']} is behaving in a manner that may indicate it is being used to perform "
                  f"a Denial of Service attack ({latest['variant']}).",
            description=(f"{latest['resource_key']} sent {hit.peak:,} small packets to {latest['remote']} "
                         f"(port {latest['remote_port']}) within {ctx.setting('window_seconds') // 60} minutes."),
            info={"outPackets": hit.peak},
        )
