"""S3 data-event habits for one account, then the five S3 anomaly types injected and benign
variations, with the ground truth (tests/anomaly/scenario.py's shape: `build()` returns a
scenario.Scenario that `scenario.evaluate` scores).

Habits: an application's instance role reading and writing its bucket around the clock, a nightly
ETL role, a person working on shared documents through the console (from home on Fridays), a
backup role reading in bulk every three hours, and a new employee who joins in the test week.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from tests.anomaly.scenario import (
    ACCOUNT,
    ATTACK_NET,
    ATTACK_NET_2,
    ATTACK_NET_3,
    ATTACK_UA,
    BOTO_APP,
    CI,
    CLI_213,
    CONSOLE,
    HISTORY_DAYS,
    HOME_A,
    INSTANCE_IP,
    OFFICE,
    START,
    TEST_DAYS,
    Injected,
    Scenario,
    day_frame,
)

ROLE = f"arn:aws:iam::{ACCOUNT}:role"
HOSTING = "194.26.29.{}"  # a hosting network nobody in the account uses
BOTO_APP_MINOR = BOTO_APP.replace("Boto3/1.28.40", "Boto3/1.28.62")


@dataclass
class S3Habit:
    name: str
    ptype: str
    arn: str
    principal_id: str
    access_key: str
    ops: list[tuple[str, str, float]]  # (API, bucket, weight)
    networks: list[tuple[str, float]]
    user_agent: str
    hours: range
    per_hour: tuple[int, int]
    weekend: bool = False
    issuer: str = ""
    start_day: int = 0


def habits() -> list[S3Habit]:
    return [
        S3Habit("app", "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/app-server/i-0a1b2c3d4e5f60718",
                "AROAAPP000000000005:i-0a1b2c3d4e5f60718", "ASIAAPP0000000000005",
                [("GetObject", "orders-data", 0.6), ("PutObject", "orders-data", 0.4)], [(INSTANCE_IP, 1.0)],
                BOTO_APP, range(24), (30, 120), weekend=True, issuer=f"{ROLE}/app-server"),
        S3Habit("etl", "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/etl-nightly/run",
                "AROAETL000000000007:run", "ASIAETL0000000000007",
                [("GetObject", "orders-data", 0.5), ("ListObjectsV2", "orders-data", 0.1),
                 ("PutObject", "analytics-lake", 0.4)], [(CI, 1.0)], BOTO_APP, range(1, 5), (100, 300),
                weekend=True, issuer=f"{ROLE}/etl-nightly"),
        S3Habit("alice", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "AIDAALICE0000000001", "AKIAALICE00000000001",
                [("ListObjectsV2", "shared-docs", 0.3), ("GetObject", "shared-docs", 0.4),
                 ("HeadObject", "shared-docs", 0.1), ("PutObject", "shared-docs", 0.2)],
                [(OFFICE, 0.8), (HOME_A, 0.2)], CONSOLE, range(8, 18), (3, 20)),  # home on Fridays
        S3Habit("backup", "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/backup-reader/nightly",
                "AROABACKUP0000000008:nightly", "ASIABACKUP0000000008",
                [("GetObject", "orders-data", 0.7), ("GetObject", "analytics-lake", 0.3)], [(CI, 1.0)], BOTO_APP,
                range(0, 24, 3), (100, 200), weekend=True, issuer=f"{ROLE}/backup-reader"),
        # Joins in the test week: all new, but inside its learning period.
        S3Habit("dave", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/dave", "AIDADAVE00000000006", "AKIADAVE000000000006",
                [("ListObjectsV2", "shared-docs", 0.4), ("DeleteObject", "shared-docs", 0.2),
                 ("PutObjectAcl", "shared-docs", 0.1), ("GetObject", "customer-pii", 0.3)],
                [(ATTACK_NET_3, 1.0)], ATTACK_UA, range(10, 20), (10, 50), start_day=HISTORY_DAYS + 1),
    ]


def event(h: S3Habit, when: datetime, api: str, bucket: str, ip: str, ua: str, *, error: str | None = None) -> dict:
    return {
        "event_time": when, "account_id": ACCOUNT, "region": "us-east-1", "event_source": "s3.amazonaws.com",
        "event_name": api, "principal_type": h.ptype, "principal_arn": h.arn, "principal_id": h.principal_id,
        "user_name": h.name if h.ptype == "IAMUser" else None, "access_key_id": h.access_key,
        "session_issuer_arn": h.issuer or None, "error_code": error, "source_ip": ip, "user_agent": ua,
        "event_id": f"{h.name}-{when.timestamp():.0f}-{random.getrandbits(32):08x}",
        "request_parameters": json.dumps({"bucketName": bucket, "key": f"data/{random.getrandbits(24):06x}.json"}),
        "event_category": "Data",
    }


def _pick(rng: random.Random, weighted: list) -> tuple:
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0]


def benign_day(rng: random.Random, h: S3Habit, day: int, *, ua: str | None = None, volume: float = 1.0,
               extra_bucket: str | None = None) -> list[dict]:
    date = START + timedelta(days=day)
    weekend = date.weekday() >= 5
    if day < h.start_day or (weekend and not h.weekend):
        return []
    # One network per day: the first, except on Fridays for people with a second (working from home).
    network = h.networks[1][0] if len(h.networks) > 1 and date.weekday() == 4 else h.networks[0][0]
    ip = network.format(rng.randint(2, 250)) if "{}" in network else network
    events = []
    for hour in [hr for hr in h.hours if rng.random() < (0.3 if weekend and len(h.hours) > 6 else 0.8)]:
        for _ in range(int(rng.randint(*h.per_hour) * volume)):
            api, bucket, _ = _pick(rng, h.ops)
            if extra_bucket and rng.random() < 0.3:
                bucket = extra_bucket
            events.append(event(h, date + timedelta(hours=hour, seconds=rng.randint(0, 3599)), api, bucket, ip,
                                ua or h.user_agent))
    return events


def injected(by: dict[str, S3Habit]) -> list[Injected]:
    day = START + timedelta(days=HISTORY_DAYS)
    alice, app, etl, backup = by["alice"], by["app"], by["etl"], by["backup"]
    out = []

    when = day + timedelta(days=1, hours=15)
    recon = Injected("S3 discovery from a new network and tool", alice.arn, when, ("Discovery:S3/AnomalousBehavior",))
    apis = ("ListObjectsV2", "GetBucketAcl", "GetObjectAcl", "ListObjectVersions", "HeadObject", "GetBucketPolicy")
    buckets = ("shared-docs", "orders-data", "analytics-lake", "customer-pii")
    for i in range(48):
        recon.events.append(event(alice, when + timedelta(seconds=30 * i), apis[i % len(apis)], buckets[i % 4],
                                  ATTACK_NET.format(13), ATTACK_UA,
                                  error="AccessDenied" if apis[i % len(apis)] == "GetBucketPolicy" else None))
    out.append(recon)

    when = day + timedelta(days=2, hours=13)
    key = f"{ROLE}/app-server#i-0a1b2c3d4e5f60718"
    exfil = Injected("instance credentials read a bucket out from outside", key, when,
                     ("Exfiltration:S3/AnomalousBehavior",))
    for i in range(900):
        exfil.events.append(event(app, when + timedelta(seconds=3 * i), "GetObject",
                                  "customer-pii" if i % 3 else "orders-data", ATTACK_NET_2.format(40),
                                  CLI_213.format("s3")))
    out.append(exfil)

    when = day + timedelta(days=3, hours=6)
    wipe = Injected("ETL role deletes the lake", f"{ROLE}/etl-nightly", when, ("Impact:S3/AnomalousBehavior.Delete",))
    for i in range(60):
        api = ("ListObjectVersions", "DeleteObjects", "DeleteObject")[i % 3]   # versions too: no undo
        wipe.events.append(event(etl, when + timedelta(seconds=20 * i), api, "analytics-lake", CI.format(9), BOTO_APP))
    out.append(wipe)

    when = day + timedelta(days=4, hours=11)
    acl = Injected("objects made public by a console user through the CLI", alice.arn, when,
                   ("Impact:S3/AnomalousBehavior.Permission",))
    for i in range(6):
        acl.events.append(event(alice, when + timedelta(minutes=2 * i), "PutObjectAcl", "shared-docs",
                                OFFICE.format(21), CLI_213.format("s3api")))
    out.append(acl)

    when = day + timedelta(days=5, hours=2)
    overwrite = Injected("read-only backup role overwrites objects", f"{ROLE}/backup-reader", when,
                         ("Impact:S3/AnomalousBehavior.Write",))
    for i in range(200):
        overwrite.events.append(event(backup, when + timedelta(seconds=10 * i), "PutObject", "orders-data",
                                      HOSTING.format(77), BOTO_APP))
    out.append(overwrite)
    return out


@lru_cache(maxsize=4)
def build(seed: int = 7) -> Scenario:
    rng = random.Random(seed)
    random.seed(seed)
    hs = habits()
    by = {h.name: h for h in hs}
    attacks = injected(by)
    frames = []
    for day in range(HISTORY_DAYS + TEST_DAYS):
        test = day >= HISTORY_DAYS
        events: list[dict] = []
        for h in hs:
            if h.name == "alice" and day == HISTORY_DAYS + 2:
                # benign variation: a new bucket for her documents, with her usual tools and network
                events += benign_day(rng, h, day, extra_bucket="shared-docs-archive")
            elif h.name == "etl" and day == HISTORY_DAYS + 4:
                events += benign_day(rng, h, day, volume=2.0)   # benign variation: a night of double volume
            elif h.name == "app" and test:
                events += benign_day(rng, h, day, ua=BOTO_APP_MINOR)   # benign: a minor SDK upgrade
            else:
                events += benign_day(rng, h, day)
        frames.append(day_frame(events, attacks, day))
    return Scenario(frames, attacks, {
        "a new bucket with usual tools and network": by["alice"].arn,
        "a night of double volume": f"{ROLE}/etl-nightly",
        "a minor SDK upgrade": f"{ROLE}/app-server#i-0a1b2c3d4e5f60718",
        "new employee inside the learning period": by["dave"].arn,
    })
