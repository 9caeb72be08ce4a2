"""Threat-intelligence matches: custom threat lists and built-in feeds against flow, CloudTrail and DNS.

Dedup keys: network findings aggregate per (instance, remote address or domain); API-call findings
per (principal, source IP). The latest occurrence's details replace the older ones (GuardDuty 4.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from ingest.rules import CLOUDTRAIL, DNS, FLOW, Case, Detection, RuleContext, group_rows, rule, threat_service

TOR_EXIT = "185.220.101.1"  # in the Tor exit list shipped as a built-in feed
CASE_LIST_IP = "198.51.100.7"
EPOCH = 1714564800  # 2024-05-01T12:00:00Z

FLOW_HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def _flow(src: str, dst: str, *, sport: int = 44321, dport: int = 443, action: str = "ACCEPT", eni: str = "eni-0a1b2c3d") -> str:
    return f"2 123456789012 {eni} {src} {dst} {sport} {dport} 6 10 840 {EPOCH} {EPOCH + 60} {action} OK"


def _ct(name: str, ip: str, *, source: str = "ec2.amazonaws.com", ui_type: str = "IAMUser", **extra: Any) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": ui_type, "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice",
                                "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"}
    if ui_type == "Root":
        identity = {"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root",
                    "accountId": "123456789012", "accessKeyId": "ASIAROOT"}
    return {"eventVersion": "1.08", "eventTime": "2024-05-01T12:00:00Z", "eventSource": source, "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0", "eventType": "AwsApiCall",
            "eventID": f"ev-{name}-{ip}", "recipientAccountId": "123456789012", "userIdentity": identity, **extra}


def _dns(name: str, *, instance: str = "i-0123456789abcdef0") -> dict[str, Any]:
    return {"version": "1.100000", "account_id": "123456789012", "region": "us-east-1", "vpc_id": "vpc-0abc",
            "query_timestamp": "2024-05-01T12:00:00Z", "query_name": name + ".", "query_type": "A", "query_class": "IN",
            "rcode": "NOERROR", "answers": [], "srcaddr": "10.0.0.5", "srcport": "53211", "transport": "UDP",
            "srcids": {"instance": instance}}


# --- VPC flow: custom threat list ---------------------------------------------------------------

def _flow_matches(frame: pl.DataFrame, ips: set[str]) -> pl.DataFrame:
    """Rows whose remote side is one of `ips`, with remote/local/direction columns."""
    if not ips:
        return frame.clear()
    listed = list(ips)
    out = frame.filter(pl.col("dstaddr").is_in(listed) | pl.col("srcaddr").is_in(listed))
    dst_listed = pl.col("dstaddr").is_in(listed)
    return out.with_columns(
        pl.when(dst_listed).then(pl.col("dstaddr")).otherwise(pl.col("srcaddr")).alias("remote"),
        pl.when(dst_listed).then(pl.col("srcaddr")).otherwise(pl.col("dstaddr")).alias("local"),
        pl.when(dst_listed).then(pl.col("dstport")).otherwise(pl.col("srcport")).alias("remote_port"),
        pl.when(dst_listed).then(pl.col("srcport")).otherwise(pl.col("dstport")).alias("local_port"),
        pl.when(dst_listed).then(pl.lit("OUTBOUND")).otherwise(pl.lit("INBOUND")).alias("direction"),
    ).with_columns(pl.coalesce("instance_id", "interface_id", "local").alias("resource_key"))


PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP"}
FLOW_EVIDENCE = ["interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start",
                 "end", "action"]


def network_detection(ctx: RuleContext, group: dict[str, Any], finding_type: str, hits: tuple, *, what: str) -> Detection:
    latest = group["_latest"]
    resource = ctx.inventory.instance_resource(
        instance_id=latest.get("instance_id"), eni=latest.get("interface_id"), ip=latest.get("local")
    )
    instance = resource["instanceDetails"].get("instanceId") or latest.get("interface_id") or latest.get("local")
    remote = latest["remote"]
    service = {
        "resourceRole": "ACTOR" if latest["direction"] == "OUTBOUND" else "TARGET",
        "action": {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
            "connectionDirection": latest["direction"],
            "protocol": PROTOCOLS.get(latest.get("protocol"), str(latest.get("protocol"))),
            "blocked": latest.get("action") == "REJECT",
            "localIpDetails": {"ipAddressV4": latest.get("local")},
            "localPortDetails": {"port": latest.get("local_port")},
            "remoteIpDetails": {"ipAddressV4": remote},
            "remotePortDetails": {"port": latest.get("remote_port")},
            "localNetworkInterface": latest.get("interface_id"),
        }},
        **threat_service(hits),
    }
    return Detection(
        type=finding_type, dedup_key=f"{group['resource_key']}|{remote}",
        title=f"EC2 instance {instance} is communicating with {what} {remote}.",
        description=f"EC2 instance {instance} is communicating with {remote}, which is on the threat list "
                    f"{hits[0].list_name}.",
        first_seen=group["_first"], last_seen=group["_last"], count=group["_count"], resource=resource,
        service=service, evidence=group["_evidence"],
    )


FLOW_CUSTOM_CASES = [
    Case("outbound to a listed IP", [FLOW_HEADER, _flow("10.0.0.5", CASE_LIST_IP)],
         expect=("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",), threat_list=(CASE_LIST_IP,),
         expect_severity={"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": 5.0}),
    Case("inbound from a listed CIDR, three flows, one finding", [FLOW_HEADER] + [
        _flow("203.0.113.9", "10.0.0.5", sport=5000 + i, dport=22) for i in range(3)],
         expect=("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",), threat_list=("203.0.113.0/24",),
         expect_count={"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": 3}),
    Case("listed IP that is also trusted: trusted wins", [FLOW_HEADER, _flow("10.0.0.5", CASE_LIST_IP)],
         threat_list=(CASE_LIST_IP,), trusted_list=(CASE_LIST_IP,)),
    Case("neighbour of a listed IP", [FLOW_HEADER, _flow("10.0.0.5", "198.51.100.8")], threat_list=(CASE_LIST_IP,)),
]


@rule(source=FLOW, finding_types=("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",), cases=FLOW_CUSTOM_CASES)
def flow_custom_ip(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    custom = {ip: tuple(h for h in hits if h.source == "custom") for ip, hits in ctx.ip_hits.items()}
    custom = {ip: hits for ip, hits in custom.items() if hits}
    matches = _flow_matches(frame, set(custom))
    for group in group_rows(matches, ["resource_key", "remote"], time="start_time", evidence=FLOW_EVIDENCE):
        yield network_detection(ctx, group, "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
                                custom[group["remote"]], what="a custom threat list IP address")


# --- CloudTrail: API calls from listed IPs and Tor exits ----------------------------------------

RECON_PREFIXES = ("Get", "List", "Describe", "Search", "Lookup", "Head", "BatchGet", "Scan", "Query")
CT_EVIDENCE = ["event_time", "event_id", "event_source", "event_name", "source_ip", "user_agent", "error_code",
               "ui_type", "ui_arn", "ui_access_key_id"]


def _is_recon() -> pl.Expr:
    return pl.any_horizontal([pl.col("event_name").str.starts_with(p) for p in RECON_PREFIXES])


def _is_management() -> pl.Expr:
    """Management events made by a caller (not S3 data events, not AWS service events)."""
    return ((pl.col("event_category").fill_null("Management") != "Data")
            & (pl.col("event_type").fill_null("AwsApiCall") != "AwsServiceEvent"))


def access_key_resource(latest: dict[str, Any]) -> dict[str, Any]:
    user_type = latest.get("ui_type") or "Unknown"
    if user_type == "Root":
        user_name = "Root"
    elif user_type == "AssumedRole":
        user_name = latest.get("ui_issuer_user_name") or (latest.get("ui_arn") or "").rsplit("/", 1)[-1]
    else:
        user_name = latest.get("ui_user_name") or (latest.get("ui_arn") or "").rsplit("/", 1)[-1]
    return {"resourceType": "AccessKey", "accessKeyDetails": {
        "accessKeyId": latest.get("ui_access_key_id") or "", "principalId": latest.get("ui_principal_id") or "",
        "userName": user_name or "", "userType": user_type}}


def _remote_ip_details(ip: str | None) -> dict[str, Any]:
    from ingest.rules._ct import remote_ip_details  # _ct builds on this module: import late

    return remote_ip_details(ip)


def api_call_detection(group: dict[str, Any], finding_type: str, hits: tuple | None, *, title: str,
                       description: str) -> Detection:
    latest = group["_latest"]
    resource = access_key_resource(latest)
    service: dict[str, Any] = {
        "resourceRole": "TARGET",
        "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {
            "api": latest.get("event_name"), "serviceName": latest.get("event_source"), "callerType": "Remote IP",
            "userAgent": latest.get("user_agent") or "", "errorCode": latest.get("error_code") or "",
            "remoteIpDetails": _remote_ip_details(latest.get("source_ip")),
        }},
    }
    if hits:
        service.update(threat_service(hits))
    user = resource["accessKeyDetails"]["userName"] or resource["accessKeyDetails"]["principalId"]
    return Detection(
        type=finding_type, dedup_key=f"{latest.get('ui_principal_id') or latest.get('ui_arn')}|{group.get('source_ip', '')}",
        title=title.format(api=latest.get("event_name"), user=user, ip=latest.get("source_ip")),
        description=description.format(api=latest.get("event_name"), user=user, ip=latest.get("source_ip"),
                                       list=hits[0].list_name if hits else ""),
        first_seen=group["_first"], last_seen=group["_last"], count=group["_count"], resource=resource,
        service=service, region=latest.get("region"), evidence=group["_evidence"],
    )


def _listed_callers(frame: pl.DataFrame, ips: dict[str, tuple], recon_type: str, other_type: str, *, what: str,
                    list_kind: str) -> Iterable[Detection]:
    if not ips:
        return
    # One filter, the address test first: copying every management event before it cost more than the rule.
    events = frame.filter(pl.col("source_ip").is_in(list(ips)) & _is_management()).with_columns(
        _is_recon().alias("_recon"))
    for recon, finding_type in ((True, recon_type), (False, other_type)):
        part = events.filter(pl.col("_recon") == recon)
        for group in group_rows(part, ["ui_principal_id", "source_ip"], time="event_time", evidence=CT_EVIDENCE):
            yield api_call_detection(
                group, finding_type, ips[group["source_ip"]],
                title="API {api} was invoked from " + what + " {ip}.",
                description="API {api} was invoked by {user} from " + what + " {ip}" + list_kind + ".",
            )


CT_CUSTOM_CASES = [
    Case("DescribeInstances from a listed IP", [{"Records": [_ct("DescribeInstances", CASE_LIST_IP)]}],
         expect=("Recon:IAMUser/MaliciousIPCaller.Custom",), threat_list=(CASE_LIST_IP,)),
    Case("a write from a listed IP is not recon", [{"Records": [_ct("RunInstances", CASE_LIST_IP)]}],
         expect=("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",), threat_list=(CASE_LIST_IP,)),
    Case("recon from an unlisted IP", [{"Records": [_ct("ListUsers", "198.51.100.99", source="iam.amazonaws.com")]}],
         threat_list=(CASE_LIST_IP,)),
    Case("recon from a listed but trusted IP", [{"Records": [_ct("ListBuckets", CASE_LIST_IP, source="s3.amazonaws.com")]}],
         threat_list=(CASE_LIST_IP,), trusted_list=(CASE_LIST_IP,)),
    Case("AWS service event from a listed IP", [{"Records": [_ct("DescribeInstances", CASE_LIST_IP, eventType="AwsServiceEvent")]}],
         threat_list=(CASE_LIST_IP,)),
]


@rule(source=CLOUDTRAIL, finding_types=("Recon:IAMUser/MaliciousIPCaller.Custom",
                                        "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom"), cases=CT_CUSTOM_CASES)
def cloudtrail_custom_ip(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    custom = {ip: tuple(h for h in hits if h.source == "custom") for ip, hits in ctx.ip_hits.items()}
    yield from _listed_callers(frame, {ip: h for ip, h in custom.items() if h},
                               "Recon:IAMUser/MaliciousIPCaller.Custom",
                               "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
                               what="a custom threat list IP address", list_kind=" on the threat list {list}")


CT_TOR_CASES = [
    Case("console sign-in from a Tor exit", [{"Records": [_ct("ConsoleLogin", TOR_EXIT, source="signin.amazonaws.com")]}],
         expect=("UnauthorizedAccess:IAMUser/TorIPCaller",)),
    Case("recon from a Tor exit", [{"Records": [_ct("GetCallerIdentity", TOR_EXIT, source="sts.amazonaws.com")]}],
         expect=("Recon:IAMUser/TorIPCaller",)),
    Case("a Tor exit on the trusted list", [{"Records": [_ct("ConsoleLogin", TOR_EXIT)]}], trusted_list=(TOR_EXIT,)),
    Case("an ordinary public address", [{"Records": [_ct("ConsoleLogin", "198.51.100.20")]}]),
]


@rule(source=CLOUDTRAIL, finding_types=("UnauthorizedAccess:IAMUser/TorIPCaller", "Recon:IAMUser/TorIPCaller"),
      cases=CT_TOR_CASES)
def cloudtrail_tor(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    tor = {ip: tuple(h for h in hits if h.category == "tor_exit") for ip, hits in ctx.ip_hits.items()}
    yield from _listed_callers(frame, {ip: h for ip, h in tor.items() if h}, "Recon:IAMUser/TorIPCaller",
                               "UnauthorizedAccess:IAMUser/TorIPCaller", what="Tor exit node IP address",
                               list_kind="")


# --- DNS: queries for C2 and mining domains -------------------------------------------------------

DNS_EVIDENCE = ["query_time", "query_name", "query_type", "rcode", "srcaddr", "instance_id", "vpc_id"]


def dns_detections(frame: pl.DataFrame, ctx: RuleContext, category: str, finding_type: str, what: str) -> Iterable[Detection]:
    listed = {name: tuple(h for h in hits if h.category == category) for name, hits in ctx.domain_hits.items()}
    listed = {name: hits for name, hits in listed.items() if hits}
    if not listed:
        return
    matches = frame.filter(pl.col("query_name").is_in(list(listed))).with_columns(
        pl.coalesce("instance_id", "srcaddr").alias("resource_key"))
    for group in group_rows(matches, ["resource_key", "query_name"], time="query_time", evidence=DNS_EVIDENCE):
        latest = group["_latest"]
        resource = ctx.inventory.instance_resource(instance_id=latest.get("instance_id"), ip=latest.get("srcaddr"))
        instance = resource["instanceDetails"].get("instanceId") or latest.get("srcaddr")
        domain = group["query_name"]
        hits = listed[domain]
        yield Detection(
            type=finding_type, dedup_key=f"{group['resource_key']}|{domain}",
            title=f"{what} domain name queried by EC2 instance {instance}.",
            description=f"EC2 instance {instance} is querying {domain}, a domain name associated with {what.lower()} "
                        f"({hits[0].list_name}).",
            first_seen=group["_first"], last_seen=group["_last"], count=group["_count"], resource=resource,
            service={"resourceRole": "ACTOR",
                     "action": {"actionType": "DNS_REQUEST", "dnsRequestAction": {
                         "domain": domain, "protocol": latest.get("transport") or "UDP", "blocked": False,
                         "vpcOwnerAccountId": latest.get("account_id") or ctx.aws_account_id}},
                     **threat_service(hits)},
            evidence=group["_evidence"],
        )


DNS_C2_CASES = [
    Case("the GuardDuty tester's C2 domain", [_dns("c2.guarddutyc2activityb.com")],
         expect=("Backdoor:EC2/C&CActivity.B!DNS",)),
    Case("a subdomain, twice", [_dns("x.c2.guarddutyc2activityb.com"), _dns("x.c2.guarddutyc2activityb.com")],
         expect=("Backdoor:EC2/C&CActivity.B!DNS",), expect_count={"Backdoor:EC2/C&CActivity.B!DNS": 2}),
    Case("an ordinary domain", [_dns("www.example.com")]),
    Case("a look-alike suffix", [_dns("guarddutyc2activityb.com.example.org")]),
    Case("the tester's other names under its C2 domain are not C2", [_dns("abused-rep.guarddutyc2activityb.com"),
                                                                     _dns("e1f2a3.guarddutyc2activityb.com")]),
]


@rule(source=DNS, finding_types=("Backdoor:EC2/C&CActivity.B!DNS",), cases=DNS_C2_CASES)
def dns_c2(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    yield from dns_detections(frame, ctx, "c2", "Backdoor:EC2/C&CActivity.B!DNS", "Command and Control server")


DNS_MINING_CASES = [
    Case("a mining pool", [_dns("xmr.pool.minergate.com")], expect=("CryptoCurrency:EC2/BitcoinTool.B!DNS",)),
    Case("a crypto exchange web site is not mining", [_dns("www.coinbase.com")]),
]


@rule(source=DNS, finding_types=("CryptoCurrency:EC2/BitcoinTool.B!DNS",), cases=DNS_MINING_CASES)
def dns_mining(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    yield from dns_detections(frame, ctx, "crypto_mining", "CryptoCurrency:EC2/BitcoinTool.B!DNS",
                              "Bitcoin-related")
