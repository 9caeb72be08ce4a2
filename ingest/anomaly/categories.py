"""API categories: what kind of action a CloudTrail event is, for the finding type it raises.

Event names attackers use are mapped to MITRE ATT&CK tactics by TrailDiscover (Adan Alvarez,
CC-BY-4.0; the reduced copy ships in data/traildiscover_tactics.json with its licence). Every
other event falls back on its verb: Describe/List/Get… are discovery, anything else writes, and IAM writes
are persistence. A category maps onto one of GuardDuty's `*:IAMUser/AnomalousBehavior` types.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("data") / "traildiscover_tactics.json"

DISCOVERY = "discovery"
WRITE = "write"
PERSISTENCE = "persistence"
PRIVILEGE_ESCALATION = "privilege_escalation"
CREDENTIAL_ACCESS = "credential_access"
DEFENSE_EVASION = "defense_evasion"
IMPACT = "impact"
EXFILTRATION = "exfiltration"
INITIAL_ACCESS = "initial_access"

# Highest first: when an event (or an hour of events) has several, the most harmful names the finding.
PRIORITY = (IMPACT, EXFILTRATION, DEFENSE_EVASION, CREDENTIAL_ACCESS, PERSISTENCE, PRIVILEGE_ESCALATION,
            INITIAL_ACCESS, WRITE, DISCOVERY)
_RANK = {c: i for i, c in enumerate(PRIORITY)}

# MITRE tactic -> our category. GuardDuty has no LateralMovement/Execution/Collection anomaly types:
# collection is its "data-collection API" (Exfiltration); execution and lateral movement tamper
# with processes (Impact).
TACTIC_CATEGORY = {
    "Discovery": DISCOVERY,
    "Defense Evasion": DEFENSE_EVASION,
    "Impact": IMPACT,
    "Resource Hijacking": IMPACT,
    "Persistence": PERSISTENCE,
    "Privilege Escalation": PRIVILEGE_ESCALATION,
    "Exfiltration": EXFILTRATION,
    "Collection": EXFILTRATION,
    "Command and Control": EXFILTRATION,
    "Lateral Movement": IMPACT,
    "Execution": IMPACT,
    "Initial Access": INITIAL_ACCESS,
    "Credential Access": CREDENTIAL_ACCESS,
}

FINDING_TYPE = {
    DISCOVERY: "Discovery:IAMUser/AnomalousBehavior",
    WRITE: "Impact:IAMUser/AnomalousBehavior",
    PERSISTENCE: "Persistence:IAMUser/AnomalousBehavior",
    PRIVILEGE_ESCALATION: "PrivilegeEscalation:IAMUser/AnomalousBehavior",
    CREDENTIAL_ACCESS: "CredentialAccess:IAMUser/AnomalousBehavior",
    DEFENSE_EVASION: "DefenseEvasion:IAMUser/AnomalousBehavior",
    IMPACT: "Impact:IAMUser/AnomalousBehavior",
    EXFILTRATION: "Exfiltration:IAMUser/AnomalousBehavior",
    INITIAL_ACCESS: "InitialAccess:IAMUser/AnomalousBehavior",
}

READ_PREFIXES = ("Describe", "List", "Get", "Head", "Search", "Lookup", "BatchGet", "Query", "Scan", "Select",
                 "Check", "View", "Preview", "Estimate", "Validate", "Simulate", "Generate")

# APIs that create infrastructure that costs money: in a region the account has never used, the
# classic sign of resource hijacking (GuardDuty's unused-region deployment).
INFRASTRUCTURE_APIS = frozenset({
    "RunInstances", "CreateFleet", "RequestSpotInstances", "RequestSpotFleet", "CreateAutoScalingGroup",
    "CreateLaunchTemplate", "CreateCluster", "CreateService", "RunTask", "CreateFunction20150331",
    "CreateNotebookInstance", "CreateTrainingJob", "CreateComputeEnvironment", "CreateDBInstance",
})


@lru_cache(maxsize=1)
def _tactics() -> tuple[dict[tuple[str, str], tuple[str, ...]], dict[str, tuple[str, ...]]]:
    data = json.loads(DATA_FILE.read_text())
    by_source: dict[tuple[str, str], tuple[str, ...]] = {}
    by_name: dict[str, tuple[str, ...]] = {}
    for source, names in data["events"].items():
        for name, tactics in names.items():
            cats = tuple(sorted({TACTIC_CATEGORY[t] for t in tactics if t in TACTIC_CATEGORY}, key=_RANK.__getitem__))
            by_source[(source, name)] = cats
            by_name.setdefault(name, cats)
    return by_source, by_name


def tactics_of(event_source: str, event_name: str) -> tuple[str, ...]:
    """Every category TrailDiscover's tactics give this event (most harmful first), or ()."""
    by_source, by_name = _tactics()
    return by_source.get((event_source, event_name)) or by_name.get(event_name, ())


@lru_cache(maxsize=65536)
def category_of(event_source: str, event_name: str) -> str:
    """The one category an event counts under (the most harmful of its tactics, else by verb)."""
    cats = tactics_of(event_source or "", event_name or "")
    if cats:
        return cats[0]
    name = event_name or ""
    if name.startswith(READ_PREFIXES):  # reads are discovery whether or not attackers were seen using them
        return DISCOVERY
    if event_source == "iam.amazonaws.com":
        return PERSISTENCE
    return WRITE


def most_harmful(categories) -> str:
    """The highest-priority category among `categories` (discovery when empty)."""
    present = [c for c in categories if c in _RANK]
    return min(present, key=_RANK.__getitem__) if present else DISCOVERY


def finding_type_for(category: str) -> str:
    return FINDING_TYPE[category]
