"""Instance baselines from flow logs: a new remote port and an unusual volume are found, usual
traffic (even to a new peer on usual ports) is not, and nothing is raised while learning."""

from __future__ import annotations

import random

import polars as pl

from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.flows import detect_flow_anomalies
from ingest.anomaly.state import INSTANCE, Baselines

ACCOUNT, ENI, LOCAL = "123456789012", "eni-0a1b2c3d4e5f60718", "10.0.1.25"
T0 = 1_772_409_600  # 2026-03-02 00:00 UTC
PEERS = ["52.94.76.10", "54.239.28.85", "3.80.1.7"]


def _record(start: int, dst: str, dport: int, nbytes: int, *, proto: int = 6, sport: int = 50123) -> dict:
    return {"account_id": ACCOUNT, "interface_id": ENI, "srcaddr": LOCAL, "dstaddr": dst, "srcport": sport,
            "dstport": dport, "protocol": proto, "packets": 10, "bytes": nbytes, "start": start, "end": start + 60,
            "action": "ACCEPT", "log_status": "OK", "instance_id": None}


def _reply(start: int, src: str, sport: int, nbytes: int) -> dict:
    return {**_record(start, LOCAL, 50123, nbytes, sport=sport), "srcaddr": src, "dstaddr": LOCAL}


def _frame(records: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(records, schema_overrides={"instance_id": pl.String}, infer_schema_length=None)


def _history(rng: random.Random, days: int) -> list[pl.DataFrame]:
    frames = []
    for day in range(days):
        records = []
        for hour in range(24):
            start = T0 + day * 86400 + hour * 3600
            for peer in PEERS:
                records.append(_record(start + rng.randint(0, 3000), peer, 443, rng.randint(200_000, 2_000_000),
                                       sport=rng.randint(32768, 60999)))
                records.append(_reply(start + rng.randint(0, 3000), peer, 443, rng.randint(1_000_000, 5_000_000)))
            records.append(_record(start + 5, "10.0.0.2", 53, 400, proto=17, sport=rng.randint(32768, 60999)))
        frames.append(_frame(records))
    return frames


def test_new_port_and_volume_are_found_usual_traffic_is_not():
    rng = random.Random(3)
    baselines = Baselines()
    config = AnomalyConfig()
    found = []
    for frame in _history(rng, 10):
        found += detect_flow_anomalies(frame, baselines, config=config, region="us-east-1")
    assert found == []  # ten days of habits, learning for the first seven
    day = T0 + 10 * 86400
    usual = [_record(day + 3600 + i, peer, 443, 900_000, sport=40000 + i) for i, peer in enumerate(PEERS)]
    usual.append(_record(day + 3700, "52.95.110.1", 443, 800_000, sport=41000))  # a new peer, usual port
    assert detect_flow_anomalies(_frame(usual), baselines, config=config, region="us-east-1") == []

    odd = [_record(day + 7200, "5.188.10.13", 4444, 3_000, sport=51515),
           _record(day + 7300, "5.188.10.14", 1389, 2_000, sport=51516),
           _record(day + 7400, "89.187.160.40", 443, 6_000_000_000, sport=51517)]
    findings = detect_flow_anomalies(_frame(odd), baselines, config=config, region="us-east-1")
    by_type = {}
    for f in findings:
        by_type.setdefault(f.finding_type, []).append(f)
    ports = {f.service["additionalInfo"]["unusual"]["port"]: f for f in by_type["Behavior:EC2/NetworkPortUnusual"]}
    assert set(ports) == {4444, 1389}
    assert ports[4444].severity == 5.0 and ports[1389].severity == 8.0
    assert ports[1389].service["additionalInfo"]["context"] == "Possible log4j callback"
    action = ports[4444].service["action"]["networkConnectionAction"]
    assert action["remotePortDetails"]["port"] == 4444 and action["remoteIpDetails"]["ipAddressV4"] == "5.188.10.13"
    assert ports[4444].resource["instanceDetails"]["networkInterfaces"][0]["networkInterfaceId"] == ENI
    assert ports[4444].region == "us-east-1"
    usual_ports = {p["value"] for p in ports[4444].service["additionalInfo"]["profiledBehavior"]["instance"]["port"]}
    assert usual_ports == {"6/443", "17/53"}
    [volume] = by_type["Behavior:EC2/TrafficVolumeUnusual"]
    assert volume.service["additionalInfo"]["outBytes"] == 6_000_000_000
    assert volume.service["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] == "89.187.160.40"

    # the same hour arriving in another batch does not raise the same port again
    again = detect_flow_anomalies(_frame([_record(day + 7900, "5.188.10.13", 4444, 100, sport=51999)]), baselines,
                                  config=config, region="us-east-1")
    assert again == []


def test_instance_learning_raises_nothing():
    baselines = Baselines()
    frames = _history(random.Random(5), 2)
    frames.append(_frame([_record(T0 + 2 * 86400 + 60, "5.188.10.13", 4444, 3_000, sport=51515)]))
    assert [f for frame in frames for f in detect_flow_anomalies(frame, baselines)] == []
    profile = baselines.peek(ACCOUNT, INSTANCE, ENI)
    assert profile is not None and profile.count("port", "6/443") > 40


def test_instance_id_from_inventory_names_the_subject():
    class Inventory:
        links = {ENI: "i-0a1b2c3d4e5f60718"}

        def instance_resource(self, *, instance_id=None, eni=None, ip=None):
            return {"resourceType": "Instance", "instanceDetails": {"instanceId": instance_id or self.links[eni]}}

    baselines = Baselines()
    detect_flow_anomalies(_history(random.Random(1), 1)[0], baselines, inventory=Inventory())
    assert baselines.peek(ACCOUNT, INSTANCE, "i-0a1b2c3d4e5f60718") is not None
    assert baselines.peek(ACCOUNT, INSTANCE, ENI) is None


def test_same_records_learn_the_same_baseline_whatever_their_order():
    """More remote hosts tie on bytes than an instance-hour keeps (VOLUME_TOP): the cut is by
    address, so the records' order never changes what is learned."""
    records = [_record(T0 + i, f"52.94.{i // 200}.{i % 200}", 443, 1000, sport=40000 + i) for i in range(60)]
    learned = []
    for seed in (1, 2, 3):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        baselines = Baselines()
        detect_flow_anomalies(_frame(shuffled), baselines, config=AnomalyConfig(), region="us-east-1")
        learned.append({key: profile.to_json() for key, profile in baselines.dirty().items()})
    assert learned[0] and learned[0] == learned[1] == learned[2]
