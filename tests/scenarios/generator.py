"""A labelled scenario: several accounts, days of benign network and DNS traffic with realistic noise,
then injected attacks, written as gzip'd objects in AWS's exact S3 layouts.

Every attack carries a label (account, finding type, resource it must name); every benign trap
names a resource on which no finding may appear. Benign noise: web servers with internet clients and
their replies, load-balancer health checks (also TCP checks on port 22 of a bastion), REJECTed
internet scanning (known scanners among the sources), known scanners reaching port 443, CDN and
cloud downloads, bulk uploads in large packets, a mail relay with its smart hosts and DNSBL lookups,
a fleet that always uses a public resolver, a trusted address that is also on a threat list, CDN
hash names, long cloud-service names, NXDOMAIN typos and search-domain expansions, AWS's own
metadata names, and IPv6 clients.

Half the accounts write flow logs in the default v2 format, the others in a custom format with
instance ids (both as AWS delivers them). Objects cover `object_minutes` each, so windowed attacks
can straddle two objects.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.synthetic import FLOW_V2_HEADER, dns_key, dns_query, flow_key

EXTERNAL = Path("/work/shared/data/external")
START = datetime(2026, 11, 2, tzinfo=UTC)
CUSTOM_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
                 "action log-status vpc-id instance-id flow-direction")

SCANNERS = ["129.82.138.12", "129.82.138.31", "129.82.138.32", "129.82.138.33"]   # KnownScanners feed
C2_IP, POOL_IP = "101.35.159.51", "176.31.105.53"
BLACKHOLE_IP, DROP_IP = "240.0.13.7", "185.83.146.154"   # Bogons (reserved 240/4); Androxgh0st collector
CUSTOM_IP, TRUSTED_LISTED = "198.51.100.7", "198.51.100.77"
TRUSTED_C2 = "107.191.47.239"  # a listed mining-pool address the customer trusts
PUBLIC_RESOLVER = "8.8.8.8"


@dataclass(frozen=True)
class Label:
    account: str
    type: str
    resource: str   # "instance-id|eni-id"
    note: str = ""

    def named_in(self, text: str) -> bool:
        return any(part in text for part in self.resource.split("|"))


@dataclass(frozen=True)
class Trap:
    account: str
    resource: str   # "instance-id|eni-id"
    name: str

    def named_in(self, text: str) -> bool:
        return any(part in text for part in self.resource.split("|"))


@dataclass
class Scenario:
    objects: list[tuple[str, bytes]] = field(default_factory=list)   # (S3 key, gzip'd body), time order
    labels: list[Label] = field(default_factory=list)
    traps: list[Trap] = field(default_factory=list)
    threat_list: list[str] = field(default_factory=list)
    trusted_list: list[str] = field(default_factory=list)
    acceptable: list[Label] = field(default_factory=list)   # findings that are right but not required
    records: int = 0


@dataclass
class Host:
    instance: str
    eni: str
    ip: str
    ipv6: str | None = None

    @property
    def ids(self) -> str:
        """How a finding may name the host: its instance id or, in default-format flow logs, its ENI."""
        return f"{self.instance}|{self.eni}"


class AccountTraffic:
    """Records of one account, bucketed by the object (time slice) they fall into."""

    def __init__(self, account: str, index: int, *, custom: bool, rng: random.Random, object_minutes: int) -> None:
        self.account, self.custom, self.rng, self.object_minutes = account, custom, rng, object_minutes
        self.region, self.vpc = "us-east-1", f"vpc-0{index:016x}"
        self.flow: dict[int, list[str]] = {}
        self.dns: dict[int, list[dict[str, Any]]] = {}
        self.hosts: dict[str, Host] = {}
        self.index = index

    def host(self, role: str, n: int = 0, *, v6: bool = False) -> Host:
        key = f"{role}{n}"
        if key not in self.hosts:
            i = len(self.hosts) + 1
            self.hosts[key] = Host(f"i-0{self.index:02x}{i:014x}", f"eni-0{self.index:02x}{i:014x}",
                                   f"10.{self.index}.{i // 200}.{i % 200 + 10}",
                                   f"2600:1f18:{self.index:x}:{i:x}::10" if v6 else None)
        return self.hosts[key]

    def _slot(self, t: datetime) -> int:
        return int((t - START).total_seconds() // (self.object_minutes * 60))

    def add_flow(self, host: Host, src: str, dst: str, sport: int, dport: int, t: datetime, *, proto: int = 6,
                 packets: int = 10, size: int = 840, action: str = "ACCEPT") -> None:
        epoch = int(t.timestamp())
        line = (f"2 {self.account} {host.eni} {src} {dst} {sport} {dport} {proto} {packets} {size} {epoch} "
                f"{epoch + 60} {action} OK")
        if self.custom:
            direction = "egress" if src in (host.ip, host.ipv6) else "ingress"
            line += f" {self.vpc} {host.instance} {direction}"
        self.flow.setdefault(self._slot(t), []).append(line)

    def connection(self, host: Host, remote: str, rport: int, t: datetime, *, inbound: bool = False, proto: int = 6,
                   packets: int = 10, size: int = 900, action: str = "ACCEPT", reply: bool = True,
                   local: str | None = None) -> None:
        """A client record and, when answered, the server's reply record (both as the ENI logs them)."""
        local = local or host.ip
        eph = self.rng.randrange(32768, 61000)
        if inbound:
            self.add_flow(host, remote, local, eph, rport, t, proto=proto, packets=packets, size=size, action=action)
            if reply and action == "ACCEPT":
                self.add_flow(host, local, remote, rport, eph, t, proto=proto, packets=packets, size=size * 3)
        else:
            self.add_flow(host, local, remote, eph, rport, t, proto=proto, packets=packets, size=size, action=action)
            if reply and action == "ACCEPT":
                self.add_flow(host, remote, local, rport, eph, t, proto=proto, packets=packets, size=size * 3)

    def query(self, host: Host, name: str, t: datetime, *, rcode: str = "NOERROR", answer: str = "93.184.216.34",
              qtype: str = "A") -> None:
        q = dns_query(t=t, account=self.account, region=self.region, name=name, instance=host.instance,
                      srcaddr=host.ip, vpc=self.vpc, rcode=rcode, answer=answer)
        q["query_type"] = qtype
        self.dns.setdefault(self._slot(t), []).append(q)

    def objects(self) -> list[tuple[datetime, str, bytes]]:
        out = []
        header = CUSTOM_HEADER if self.custom else FLOW_V2_HEADER
        for slot, lines in self.flow.items():
            t = START + timedelta(minutes=slot * self.object_minutes)
            body = (header + "\n" + "\n".join(sorted(lines, key=lambda ln: int(ln.split()[10]))) + "\n").encode()
            out.append((t, flow_key(self.account, self.region, t, suffix=f"{slot:04x}"), gzip.compress(body, 1)))
        for slot, queries in self.dns.items():
            t = START + timedelta(minutes=slot * self.object_minutes)
            queries.sort(key=lambda q: q["query_timestamp"])
            body = "".join(json.dumps(q, separators=(",", ":")) + "\n" for q in queries).encode()
            out.append((t, dns_key(self.account, self.vpc, t, suffix=f"{slot:04x}"), gzip.compress(body, 1)))
        return out


_LISTED: set[str] = set()


def listed_ips() -> set[str]:
    """Every address of the built-in feeds: random benign peers must not hit one by chance."""
    if not _LISTED:
        from intel.builtin import DATA_DIR

        for path in DATA_DIR.glob("*.txt"):
            _LISTED.update(ln.strip() for ln in path.read_text().splitlines() if ln[:1].isdigit())
    return _LISTED


def tor_ips(n: int) -> list[str]:
    """Tor exits that are on no other feed (so only the Tor rules can fire on them)."""
    from intel.builtin import DATA_DIR

    others = set()
    for path in DATA_DIR.glob("*.txt"):
        if path.name != "tor_exit_nodes.txt":
            others.update(ln.strip() for ln in path.read_text().splitlines())
    exits = [ln.strip() for ln in (DATA_DIR / "tor_exit_nodes.txt").read_text().splitlines()
             if ln[:1].isdigit() and "." in ln]
    return [ip for ip in exits if ip not in others][:n]


def _public(rng: random.Random) -> str:
    while True:
        ip = f"{rng.choice([52, 54, 35, 104, 151, 13, 18])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ip not in listed_ips():
            return ip


POPULAR = ["amazonaws.com", "ubuntu.com", "github.com", "pypi.org", "debian.org", "google.com", "cloudflare.com",
           "docker.io", "npmjs.org", "microsoft.com", "datadoghq.com", "sentry.io", "slack.com", "stripe.com"]
CLOUD_NAMES = [
    "my-company-application-logs-{acct}-us-east-1.s3.us-east-1.amazonaws.com",
    "internal-orders-api-load-balancer-1234567890.us-east-1.elb.amazonaws.com",
    "vpce-0a1b2c3d4e5f67890-abcdefgh.ssm.us-east-1.vpce.amazonaws.com",
    "_3f9a1b2c4d5e6f708192a3b4c5d6e7f8.acm-validations.aws",
    "ec2-54-12-34-56.compute-1.amazonaws.com",
    "abcdefghij1234567890.execute-api.us-east-1.amazonaws.com",
    "prod-cluster.cluster-c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
    "dkr.ecr.us-east-1.amazonaws.com", "e1234.dscb.akamaiedge.net",
]


def _benign(acct: AccountTraffic, days: int, scale: float, scenario: Scenario) -> None:
    rng = acct.rng
    webs = [acct.host("web", i, v6=(i == 0)) for i in range(3)]
    apps = [acct.host("app", i) for i in range(4)]
    bastion, relay, fleet = acct.host("bastion"), acct.host("mailrelay"), acct.host("fleet-public-dns")
    lb = [f"10.{acct.index}.250.{i}" for i in (10, 11)]
    for trap, name in ((bastion, "TCP health checks on port 22 of a bastion"), (relay, "mail relay + DNSBL lookups"),
                       (fleet, "always uses a public resolver"), (webs[1], "web server: clients, scanners, health checks"),
                       (apps[0], "bulk uploads, CDN names, trusted listed IP, search-domain NXDOMAIN")):
        scenario.traps.append(Trap(acct.account, trap.ids, name))
    hours = days * 24
    per_hour = max(1, int(60 * scale))
    for h in range(hours):
        base = START + timedelta(hours=h)
        at = lambda base=base: base + timedelta(seconds=rng.randrange(3600))  # noqa: E731
        for web in webs:
            for _ in range(per_hour):
                acct.connection(web, _public(rng), rng.choice([443, 443, 80]), at(), inbound=True, packets=rng.randrange(6, 60))
            if web.ipv6:
                for _ in range(per_hour // 3):
                    acct.connection(web, f"2a02:{rng.randrange(0xffff):x}::{rng.randrange(0xffff):x}", 443, at(),
                                    inbound=True, local=web.ipv6, packets=rng.randrange(6, 40))
            for minute in range(0, 60, 5):   # load-balancer health checks
                acct.connection(web, lb[minute % 2], 80, base + timedelta(minutes=minute), inbound=True, packets=4,
                                size=300)
        for minute in range(0, 60, 1):      # NLB TCP checks on the bastion's SSH port: tiny connections
            acct.connection(bastion, lb[minute % 2], 22, base + timedelta(minutes=minute), inbound=True, packets=3,
                            size=180, reply=False)
        for _ in range(per_hour // 2):      # REJECTed internet scanning, known scanners among the sources
            target = rng.choice(webs + apps)
            src = rng.choice(SCANNERS) if rng.random() < 0.3 else _public(rng)
            acct.connection(target, src, rng.choice([22, 23, 3389, 445, 9200, 8088, 5985, 6379, 1433]), at(),
                            inbound=True, packets=1, size=44, action="REJECT")
        acct.connection(webs[1], rng.choice(SCANNERS), 443, at(), inbound=True, packets=8)   # scanner on 443: fine
        for app in apps:
            for _ in range(per_hour):
                acct.connection(app, _public(rng), 443, at(), packets=rng.randrange(8, 200), size=rng.randrange(900, 9000))
            acct.query(app, rng.choice(POPULAR), at())
        # bulk uploads: many packets, but large ones
        acct.connection(apps[0], "52.216.10.20", 443, at(), packets=400000, size=400000 * 1400)
        acct.connection(apps[0], TRUSTED_LISTED, 8443, at(), packets=30)       # trusted wins over the threat list
        acct.connection(apps[0], TRUSTED_C2, 443, at(), packets=30)            # trusted wins over a built-in feed
        acct.connection(relay, rng.choice(["52.94.1.25", "52.94.2.25"]), 25, at(), packets=30)
        acct.connection(fleet, PUBLIC_RESOLVER, 53, at(), proto=17, packets=2, size=120)
        for _ in range(per_hour // 2):      # DNSBL lookups of the relay: many distinct names
            acct.query(relay, f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                              ".zen.spamhaus.org", at(), rcode="NXDOMAIN")
        for host in (*webs, *apps, fleet, bastion):
            for _ in range(max(1, per_hour // 6)):
                k = min(int(rng.paretovariate(1.2)), 60)
                acct.query(host, f"{['www', 'api', 'cdn', 'static'][k % 4]}{k // 4 or ''}.{POPULAR[k % len(POPULAR)]}",
                           at())
        acct.query(apps[0], f"d{rng.getrandbits(40):010x}.cloudfront.net", at())
        acct.query(apps[0], rng.choice(CLOUD_NAMES).format(acct=acct.account), at())
        acct.query(apps[0], rng.choice(["githbu.com", "pypi.ogr", "api.svc.cluster.local", "db.ec2.internal"]), at(),
                   rcode="NXDOMAIN")
        acct.query(apps[1], "instance-data.ec2.internal", at(), answer="169.254.169.254")


def _window(rng: random.Random, days: int) -> datetime:
    """A start time after the first day (resolver history has been learned)."""
    return START + timedelta(days=1, minutes=rng.randrange(60, max(120, (days - 1) * 24 * 60 - 180)))


def _attacks(acct: AccountTraffic, days: int, scenario: Scenario, exfil_names: list[str], dga_feed: list[str]) -> None:
    rng, a = acct.rng, acct.account
    label = lambda t, host, note="": scenario.labels.append(Label(a, t, host.ids, note))  # noqa: E731
    also = lambda t, host: scenario.acceptable.append(Label(a, t, host.ids))  # noqa: E731
    tor = tor_ips(6)

    def burst(host: Host, remote: str, port: int, n: int, step: float, *, inbound: bool, t0: datetime | None = None,
              local: str | None = None, packets: int = 22) -> None:
        t0 = t0 or _window(rng, days)
        for i in range(n):
            acct.connection(host, remote, port, t0 + timedelta(seconds=i * step), inbound=inbound, packets=packets,
                            size=3000, local=local)

    # Brute force. The SSH one straddles an object boundary on purpose.
    victim = acct.host("victim-ssh")
    boundary = START + timedelta(days=1, hours=3, minutes=-3)
    burst(victim, _public(rng), 22, 60, 6, inbound=True, t0=boundary)
    label("UnauthorizedAccess:EC2/SSHBruteForce", victim, "split across two objects")
    v6 = acct.host("victim-v6", v6=True)
    acct.connection(v6, "2606:4700::6810:84e5", 443, _window(rng, days))
    burst(v6, "2001:db8:bad::7", 22, 40, 8, inbound=True, local=v6.ipv6)
    label("UnauthorizedAccess:EC2/SSHBruteForce", v6, "IPv6")
    rdp = acct.host("rdp-actor")
    burst(rdp, _public(rng), 3389, 50, 5, inbound=False)
    label("UnauthorizedAccess:EC2/RDPBruteForce", rdp, "instance is the actor")
    winrm = acct.host("winrm-target")
    burst(winrm, _public(rng), 5985, 40, 10, inbound=True)
    label("Impact:EC2/WinRMBruteForce", winrm)
    # Port probes from known scanners, ACCEPTed.
    probed = acct.host("probed")
    acct.connection(probed, SCANNERS[1], 9200, _window(rng, days), inbound=True, packets=2, size=100)
    label("Recon:EC2/PortProbeUnprotectedPort", probed)
    emr = acct.host("emr-master")
    acct.connection(emr, SCANNERS[2], 8088, _window(rng, days), inbound=True, packets=2, size=100)
    label("Recon:EC2/PortProbeEMRUnprotectedPort", emr)
    # Outbound scan and sweep.
    scanner = acct.host("scanner")
    t0, target = _window(rng, days), f"10.{acct.index}.9.9"
    for i, port in enumerate(rng.sample(range(1, 10000), 120)):
        acct.connection(scanner, target, port, t0 + timedelta(seconds=i), packets=1, size=44, reply=False)
    acct.connection(scanner, _public(rng), 443, t0)
    label("Recon:EC2/Portscan", scanner)
    sweeper = acct.host("sweeper")
    t0 = _window(rng, days)
    for i in range(220):
        acct.connection(sweeper, _public(rng), 6379, t0 + timedelta(seconds=i * 2), packets=1, size=44, reply=False)
    label("Impact:EC2/PortSweep", sweeper)
    # Denial of service, every variant.
    for variant, proto, port in (("Udp", 17, 80), ("Tcp", 6, 443), ("Dns", 17, 53), ("UdpOnTcpPorts", 17, 3306),
                                 ("UnusualProtocol", 2, 0)):
        bot = acct.host(f"dos-{variant}")
        t0, victim_ip = _window(rng, days), _public(rng)
        for i in range(6):
            acct.add_flow(bot, bot.ip, victim_ip, 40000 + i, port, t0 + timedelta(seconds=60 * i), proto=proto,
                          packets=80000, size=80000 * 60)
        label(f"Backdoor:EC2/DenialOfService.{variant}", bot)
    spam = acct.host("spambot")
    t0 = _window(rng, days)
    for i in range(60):
        acct.connection(spam, _public(rng), 25, t0 + timedelta(seconds=i * 20), packets=20)
    label("Backdoor:EC2/Spambot", spam)
    # Feeds and lists.
    for role, remote, port, finding in (("c2", C2_IP, 443, "Backdoor:EC2/C&CActivity.B"),
                                        ("miner", POOL_IP, 3333, "CryptoCurrency:EC2/BitcoinTool.B"),
                                        ("blackholed", BLACKHOLE_IP, 8080, "Trojan:EC2/BlackholeTraffic"),
                                        ("droppoint", DROP_IP, 80, "Trojan:EC2/DropPoint"),
                                        ("torclient", tor[0], 9001, "UnauthorizedAccess:EC2/TorClient"),
                                        ("custom", CUSTOM_IP, 8009, "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom")):
        host = acct.host(role)
        for i in range(3):
            acct.connection(host, remote, port, _window(rng, days) + timedelta(seconds=i), packets=30)
        label(finding, host)
    relay = acct.host("torrelay")
    t0 = _window(rng, days)
    for i, peer in enumerate(tor[1:6]):
        acct.connection(relay, peer, 9001, t0 + timedelta(seconds=i), inbound=True, packets=50)
    label("UnauthorizedAccess:EC2/TorRelay", relay)
    # Resolver evasion: quiet history on day 0, then public resolvers.
    for kind, remote, port, finding in (("dns", "1.0.0.1", 53, "DefenseEvasion:EC2/UnusualDNSResolver"),
                                        ("doh", "1.1.1.1", 443, "DefenseEvasion:EC2/UnusualDoHActivity"),
                                        ("dot", "9.9.9.9", 853, "DefenseEvasion:EC2/UnusualDoTActivity")):
        host = acct.host(f"evader-{kind}")
        acct.connection(host, _public(rng), 443, START + timedelta(minutes=30))
        acct.connection(host, remote, port, _window(rng, days) + timedelta(hours=1), proto=17 if port == 53 else 6,
                        packets=6)
        label(finding, host)
    # DNS: feeds, lists, rebinding, tunnelling, DGA.
    for role, name, finding in (
            ("dns-c2", "c2.guarddutyc2activityb.com", "Backdoor:EC2/C&CActivity.B!DNS"),
            ("dns-miner", "xmr.pool.minergate.com", "CryptoCurrency:EC2/BitcoinTool.B!DNS"),
            ("dns-blackhole", "guarddutyblackholeactivity.com", "Trojan:EC2/BlackholeTraffic!DNS"),
            ("dns-droppoint", "guarddutydroppointactivity.com", "Trojan:EC2/DropPoint!DNS"),
            ("dns-phish", "login.guarddutyphishingactivity.com", "Trojan:EC2/PhishingDomainRequest!DNS"),
            ("dns-driveby", "guarddutydrivebyactivity.com", "Trojan:EC2/DriveBySourceTraffic!DNS"),
            ("dns-abused", "abused-rep.guarddutyc2activityb.com", "Impact:EC2/AbusedDomainRequest.Reputation"),
            ("dns-malicious", "malicious-rep.guarddutyc2activityb.com", "Impact:EC2/MaliciousDomainRequest.Reputation"),
            ("dns-crypto-rep", "crypto-rep.guarddutyc2activityb.com", "Impact:EC2/BitcoinDomainRequest.Reputation"),
            ("dns-suspicious", "suspicious-rep.guarddutyc2activityb.com",
             "Impact:EC2/SuspiciousDomainRequest.Reputation"),
            ("dns-custom", "cdn.evil-updates.example", "Impact:EC2/MaliciousDomainRequest.Custom"),
            ("dns-rebind", "7f000001.a9fea9fe.rbndr.us", "UnauthorizedAccess:EC2/MetadataDNSRebind")):
        host = acct.host(role)
        acct.query(host, name, _window(rng, days), answer="169.254.169.254" if "rbndr" in name else "203.0.113.66")
        label(finding, host)   # each tester name raises only its own type (no C&C on its siblings)
    known = acct.host("dns-dga-known")
    t0 = _window(rng, days)
    for i, name in enumerate(rng.sample(dga_feed, 12)):
        acct.query(known, name, t0 + timedelta(seconds=i * 5), rcode="NXDOMAIN")
    label("Trojan:EC2/DGADomainRequest.C!DNS", known)
    also("Trojan:EC2/DGADomainRequest.B", known)   # known DGA names also read as generated
    dga = acct.host("dns-dga")
    t0 = _window(rng, days)
    for i in range(40):
        acct.query(dga, _dga_name(rng), t0 + timedelta(seconds=i * 7), rcode="NXDOMAIN" if i % 5 else "NOERROR")
    label("Trojan:EC2/DGADomainRequest.B", dga)
    exfil = acct.host("dns-exfil")
    t0 = _window(rng, days)
    tester = acct.index == 1   # AWS's own tunnelling queries in the first account, a hex tunnel elsewhere
    names = rng.sample(exfil_names, 60) if tester else [
        f"{rng.getrandbits(240):060x}.{rng.getrandbits(80):020x}.t.exfil-relay.net" for _ in range(60)]
    for i, name in enumerate(names):
        acct.query(exfil, name, t0 + timedelta(seconds=i * 3))
    label("Trojan:EC2/DNSDataExfiltration", exfil)


def _dga_name(rng: random.Random) -> str:
    """A pseudo-random name in the style of classic DGAs (Conficker/CryptoLocker: random letters)."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(10, 17))) + rng.choice(
        [".com", ".net", ".org", ".info", ".biz", ".ru"])


def _exfil_names() -> list[str]:
    path = EXTERNAL / "amazon-guardduty-tester" / "queries.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _dga_feed() -> list[str]:
    names = []
    for family in ("necurs", "cryptolocker", "ramnit"):
        path = EXTERNAL / "maltrail" / "trails" / "static" / "malware" / f"{family}.txt"
        names += [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return names


def build(*, accounts: int = 2, days: int = 2, scale: float = 1.0, seed: int = 7, object_minutes: int = 60,
          attacks: bool = True) -> Scenario:
    rng = random.Random(seed)
    scenario = Scenario(threat_list=[CUSTOM_IP, TRUSTED_LISTED, "evil-updates.example"],
                        trusted_list=[TRUSTED_LISTED, TRUSTED_C2])
    exfil, dga_feed = _exfil_names(), _dga_feed()
    timed: list[tuple[datetime, str, bytes]] = []
    for i in range(accounts):
        acct = AccountTraffic(f"{111111111111 * (i + 1):012d}"[:12], i + 1, custom=bool(i % 2),
                              rng=random.Random(rng.getrandbits(32)), object_minutes=object_minutes)
        _benign(acct, days, scale, scenario)
        if attacks:
            _attacks(acct, days, scenario, exfil, dga_feed)
        scenario.records += sum(len(v) for v in acct.flow.values()) + sum(len(v) for v in acct.dns.values())
        timed += acct.objects()
    timed.sort(key=lambda x: (x[0], x[1]))
    scenario.objects = [(key, body) for _, key, body in timed]
    return scenario


def write(scenario: Scenario, root: Path) -> list[Path]:
    """Write the objects under `root` with their S3 keys as paths (for `manage.py analyze`)."""
    paths = []
    for key, body in scenario.objects:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        paths.append(path)
    return paths
