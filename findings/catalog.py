"""GuardDuty's foundational finding types: name, default severity, resource, data source, action.

The single list the rule registry, sample findings, the console's type filter and the
GuardDuty-compatible API draw on (reference: tables 5.1-5.3 and 5.5 of the GuardDuty notes).
Severity is GuardDuty's default; types marked `varies` change it with context (e.g. brute force is
High when the instance is the actor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FINDING_TYPE_RE = re.compile(
    r"^(?P<purpose>[A-Za-z]+):(?P<resource>[A-Za-z0-9]+)/(?P<family>[A-Za-z0-9&]+)"
    r"(?:\.(?P<mechanism>[A-Za-z0-9.]+))?(?:!(?P<artifact>[A-Za-z0-9]+))?$"
)

THREAT_PURPOSES = frozenset({
    "AttackSequence", "Backdoor", "Behavior", "CredentialAccess", "CryptoCurrency", "DefenseEvasion", "Discovery",
    "Execution", "Exfiltration", "Impact", "InitialAccess", "PenTest", "Persistence", "Policy",
    "PrivilegeEscalation", "Recon", "Stealth", "Trojan", "UnauthorizedAccess",
})

LOW, MEDIUM, HIGH, CRITICAL = 2.0, 5.0, 8.0, 9.0

# Data sources, as GuardDuty names them in usage statistics.
CLOUD_TRAIL, S3_LOGS, FLOW_LOGS, DNS_LOGS = "CLOUD_TRAIL", "S3_LOGS", "FLOW_LOGS", "DNS_LOGS"

ACTION_BY_SOURCE = {FLOW_LOGS: "NETWORK_CONNECTION", DNS_LOGS: "DNS_REQUEST", CLOUD_TRAIL: "AWS_API_CALL",
                    S3_LOGS: "AWS_API_CALL"}
RESOURCE_TYPES = {"EC2": "Instance", "IAMUser": "AccessKey", "S3": "S3Bucket", "IAM": "AccessKey"}


@dataclass(frozen=True)
class FindingType:
    name: str
    severity: float
    source: str
    description: str
    varies: bool = False
    action_type: str = ""

    @property
    def purpose(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def resource_type(self) -> str:
        resource = self.name.split(":", 1)[1].split("/", 1)[0]
        if self.name.startswith("Policy:S3/") or self.name.startswith("Stealth:S3/"):
            return "AccessKey"  # management-event S3 findings name the caller's key (table 5.3)
        return RESOURCE_TYPES.get(resource, resource)

    @property
    def action(self) -> str:
        if self.action_type:
            return self.action_type
        return ACTION_BY_SOURCE.get(self.source, "AWS_API_CALL")

    @property
    def severity_label(self) -> str:
        return severity_label(self.severity)


def severity_label(severity: float) -> str:
    if severity >= 9.0:
        return "Critical"
    if severity >= 7.0:
        return "High"
    if severity >= 4.0:
        return "Medium"
    return "Low"


def _types(source: str, rows: list[tuple]) -> list[FindingType]:
    return [FindingType(name, sev, source, text, *rest) for name, sev, text, *rest in rows]


EC2_FLOW = _types(FLOW_LOGS, [
    ("Backdoor:EC2/C&CActivity.B", HIGH, "The instance is contacting an IP address of a known command-and-control server."),
    ("Backdoor:EC2/DenialOfService.Dns", HIGH, "The instance sends a large volume of outbound DNS traffic: it may take part in a denial-of-service attack."),
    ("Backdoor:EC2/DenialOfService.Tcp", HIGH, "The instance sends a large volume of outbound TCP traffic: it may take part in a denial-of-service attack."),
    ("Backdoor:EC2/DenialOfService.Udp", HIGH, "The instance sends a large volume of outbound UDP traffic: it may take part in a denial-of-service attack."),
    ("Backdoor:EC2/DenialOfService.UdpOnTcpPorts", HIGH, "The instance sends a large volume of outbound UDP traffic to ports normally used by TCP."),
    ("Backdoor:EC2/DenialOfService.UnusualProtocol", HIGH, "The instance sends a large volume of outbound traffic over an unusual protocol."),
    ("Backdoor:EC2/Spambot", MEDIUM, "The instance talks to remote hosts on port 25 with no prior history of doing so."),
    ("Behavior:EC2/NetworkPortUnusual", MEDIUM, "The instance communicates with a remote port it has no history with.", True),
    ("Behavior:EC2/TrafficVolumeUnusual", MEDIUM, "The instance sends an unusually large amount of traffic to a remote host."),
    ("CryptoCurrency:EC2/BitcoinTool.B", HIGH, "The instance connects to an IP address associated with cryptocurrency mining."),
    ("DefenseEvasion:EC2/UnusualDNSResolver", MEDIUM, "The instance talks to a public DNS resolver it has no recent history with."),
    ("DefenseEvasion:EC2/UnusualDoHActivity", MEDIUM, "The instance makes unusual DNS-over-HTTPS connections."),
    ("DefenseEvasion:EC2/UnusualDoTActivity", MEDIUM, "The instance makes unusual DNS-over-TLS connections."),
    ("Impact:EC2/PortSweep", HIGH, "The instance probes one port on a large number of public IP addresses."),
    ("Impact:EC2/WinRMBruteForce", LOW, "WinRM brute-force activity involving the instance.", True),
    ("Recon:EC2/PortProbeEMRUnprotectedPort", HIGH, "A known malicious host probes an unprotected EMR port of the instance.", False, "PORT_PROBE"),
    ("Recon:EC2/PortProbeUnprotectedPort", LOW, "A known malicious host probes an unprotected port of the instance.", True, "PORT_PROBE"),
    ("Recon:EC2/Portscan", MEDIUM, "The instance connects to many ports of a remote host in a short time: an outbound port scan."),
    ("Trojan:EC2/BlackholeTraffic", MEDIUM, "The instance tries to reach a black-hole (sinkhole) IP address."),
    ("Trojan:EC2/DropPoint", MEDIUM, "The instance connects to an IP address known to hold data stolen by malware."),
    ("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", MEDIUM, "The instance communicates with an IP address on one of your threat lists."),
    ("UnauthorizedAccess:EC2/RDPBruteForce", LOW, "RDP brute-force activity involving the instance.", True),
    ("UnauthorizedAccess:EC2/SSHBruteForce", LOW, "SSH brute-force activity involving the instance.", True),
    ("UnauthorizedAccess:EC2/TorClient", HIGH, "The instance connects to a Tor guard or directory authority node."),
    ("UnauthorizedAccess:EC2/TorRelay", HIGH, "The instance acts as a Tor relay."),
])

EC2_DNS = _types(DNS_LOGS, [
    ("Backdoor:EC2/C&CActivity.B!DNS", HIGH, "The instance queries a domain of a known command-and-control server."),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", HIGH, "The instance queries a domain associated with cryptocurrency mining."),
    ("Impact:EC2/AbusedDomainRequest.Reputation", MEDIUM, "The instance queries a low-reputation domain of an abused service."),
    ("Impact:EC2/BitcoinDomainRequest.Reputation", HIGH, "The instance queries a low-reputation domain tied to cryptocurrency."),
    ("Impact:EC2/MaliciousDomainRequest.Reputation", HIGH, "The instance queries a low-reputation domain tied to known malicious domains."),
    ("Impact:EC2/MaliciousDomainRequest.Custom", MEDIUM, "The instance queries a domain on one of your threat lists."),
    ("Impact:EC2/SuspiciousDomainRequest.Reputation", LOW, "The instance queries a suspicious, new or unpopular domain."),
    ("Trojan:EC2/BlackholeTraffic!DNS", MEDIUM, "The instance queries a domain redirected to a black-hole IP address."),
    ("Trojan:EC2/DGADomainRequest.B", HIGH, "The instance queries algorithmically generated (DGA) domains."),
    ("Trojan:EC2/DGADomainRequest.C!DNS", HIGH, "The instance queries known DGA domains."),
    ("Trojan:EC2/DNSDataExfiltration", HIGH, "The instance encodes data into DNS queries (DNS tunnelling)."),
    ("Trojan:EC2/DriveBySourceTraffic!DNS", HIGH, "The instance queries a known drive-by-download source."),
    ("Trojan:EC2/DropPoint!DNS", MEDIUM, "The instance queries a domain known to hold data stolen by malware."),
    ("Trojan:EC2/PhishingDomainRequest!DNS", HIGH, "The instance queries a domain used for phishing."),
    ("UnauthorizedAccess:EC2/MetadataDNSRebind", HIGH, "The instance resolves a domain that points at the instance metadata service."),
])

IAM = _types(CLOUD_TRAIL, [
    ("CredentialAccess:IAMUser/AnomalousBehavior", MEDIUM, "An API used to obtain credentials or secrets was called in an unusual way."),
    ("DefenseEvasion:IAMUser/AnomalousBehavior", MEDIUM, "An API used to evade defences was called in an unusual way."),
    ("Discovery:IAMUser/AnomalousBehavior", LOW, "A discovery API was called in an unusual way."),
    ("Exfiltration:IAMUser/AnomalousBehavior", HIGH, "A data-collection API was called in an unusual way."),
    ("Impact:IAMUser/AnomalousBehavior", HIGH, "An API that tampers with data or processes was called in an unusual way."),
    ("InitialAccess:IAMUser/AnomalousBehavior", MEDIUM, "An API associated with gaining initial access was called in an unusual way."),
    ("Persistence:IAMUser/AnomalousBehavior", MEDIUM, "An API used to keep access was called in an unusual way."),
    ("PrivilegeEscalation:IAMUser/AnomalousBehavior", MEDIUM, "An API used to gain higher permissions was called in an unusual way."),
    ("PenTest:IAMUser/KaliLinux", MEDIUM, "An API was called from a Kali Linux machine."),
    ("PenTest:IAMUser/ParrotLinux", MEDIUM, "An API was called from a Parrot Security Linux machine."),
    ("PenTest:IAMUser/PentooLinux", MEDIUM, "An API was called from a Pentoo Linux machine."),
    ("Policy:IAMUser/RootCredentialUsage", LOW, "The account's root user credentials were used."),
    ("Policy:IAMUser/ShortTermRootCredentialUsage", LOW, "Short-term root user credentials were used."),
    ("Recon:IAMUser/MaliciousIPCaller", MEDIUM, "A reconnaissance API was called from a known malicious IP address."),
    ("Recon:IAMUser/MaliciousIPCaller.Custom", MEDIUM, "A reconnaissance API was called from an IP address on one of your threat lists."),
    ("Recon:IAMUser/TorIPCaller", MEDIUM, "A reconnaissance API was called from a Tor exit node."),
    ("Stealth:IAMUser/CloudTrailLoggingDisabled", LOW, "CloudTrail logging was disabled, a trail deleted, or the trail's bucket deleted."),
    ("Stealth:IAMUser/PasswordPolicyChange", LOW, "The account password policy was weakened.", True),
    ("UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B", MEDIUM, "Successful console logins from distant places at about the same time."),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", HIGH, "Instance credentials were used from an IP address outside AWS."),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS", HIGH, "Instance credentials were used from another AWS account.", True),
    ("UnauthorizedAccess:IAMUser/MaliciousIPCaller", MEDIUM, "An API was called from a known malicious IP address."),
    ("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", MEDIUM, "An API was called from an IP address on one of your threat lists."),
    ("UnauthorizedAccess:IAMUser/TorIPCaller", MEDIUM, "An API was called from a Tor exit node."),
    ("Policy:S3/AccountBlockPublicAccessDisabled", LOW, "Account-level S3 Block Public Access was turned off."),
    ("Policy:S3/BucketBlockPublicAccessDisabled", LOW, "Block Public Access was turned off for a bucket."),
    ("Policy:S3/BucketAnonymousAccessGranted", HIGH, "A bucket policy or ACL now grants access to everyone on the internet."),
    ("Policy:S3/BucketPublicAccessGranted", HIGH, "A bucket policy or ACL now grants access to all authenticated AWS users."),
    ("Stealth:S3/ServerAccessLoggingDisabled", LOW, "Server access logging was disabled for a bucket."),
])

S3_DATA = _types(S3_LOGS, [
    ("Discovery:S3/AnomalousBehavior", LOW, "A discovery API on a bucket was called in an unusual way."),
    ("Discovery:S3/MaliciousIPCaller", HIGH, "A discovery API on a bucket was called from a known malicious IP address."),
    ("Discovery:S3/MaliciousIPCaller.Custom", HIGH, "A discovery API on a bucket was called from an IP address on one of your threat lists."),
    ("Discovery:S3/TorIPCaller", MEDIUM, "A discovery API on a bucket was called from a Tor exit node."),
    ("Exfiltration:S3/AnomalousBehavior", HIGH, "Objects were read from a bucket in an unusual way."),
    ("Exfiltration:S3/MaliciousIPCaller", HIGH, "Objects were read from a bucket by a known malicious IP address."),
    ("Impact:S3/AnomalousBehavior.Delete", HIGH, "Objects were deleted from a bucket in an unusual way."),
    ("Impact:S3/AnomalousBehavior.Permission", HIGH, "A bucket's policy or ACL was changed in an unusual way."),
    ("Impact:S3/AnomalousBehavior.Write", MEDIUM, "Objects were written to a bucket in an unusual way."),
    ("Impact:S3/MaliciousIPCaller", HIGH, "An API that tampers with bucket data was called from a known malicious IP address."),
    ("PenTest:S3/KaliLinux", MEDIUM, "An S3 API was called from a Kali Linux machine."),
    ("PenTest:S3/ParrotLinux", MEDIUM, "An S3 API was called from a Parrot Security Linux machine."),
    ("PenTest:S3/PentooLinux", MEDIUM, "An S3 API was called from a Pentoo Linux machine."),
    ("UnauthorizedAccess:S3/MaliciousIPCaller.Custom", HIGH, "An S3 API was called from an IP address on one of your threat lists."),
    ("UnauthorizedAccess:S3/TorIPCaller", HIGH, "An S3 API was called from a Tor exit node."),
])

ATTACK_SEQUENCES = _types(CLOUD_TRAIL, [
    ("AttackSequence:IAM/CompromisedCredentials", CRITICAL, "A sequence of suspicious actions by one principal suggests its credentials are compromised."),
    ("AttackSequence:S3/CompromisedData", CRITICAL, "A sequence of suspicious actions against buckets suggests data compromise."),
])

FINDING_TYPES: dict[str, FindingType] = {t.name: t for t in EC2_FLOW + EC2_DNS + IAM + S3_DATA + ATTACK_SEQUENCES}


def finding_type(name: str) -> FindingType:
    """The catalogue entry for `name`; KeyError for a type GuardDuty does not define."""
    return FINDING_TYPES[name]
