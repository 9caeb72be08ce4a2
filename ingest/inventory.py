"""Instances, their network interfaces and addresses, as far as Vigil knows them.

Findings name instances the way GuardDuty does. In live mode DescribeInstances fills the
inventory (ingest.services.inventory_refresh; IAM users/roles and buckets: principals_refresh and
buckets_refresh, models InventoryPrincipal and InventoryBucket); offline, and between refreshes, it is learned from
what the logs reveal: Resolver logs' `srcids.instance` with `srcaddr`, flow logs' custom-format
`instance-id` with `interface-id` and the local address, CloudTrail RunInstances and
CreateNetworkInterface responses. This class is the in-memory view one object is processed with;
the service layer loads it from and saves it to the database.
"""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl


class Inventory:
    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {}  # instance id -> instanceDetails (GuardDuty shape)
        self.links: dict[str, str] = {}  # ENI id or private/public IP -> instance id
        self.dirty_instances: set[str] = set()
        self.dirty_links: set[str] = set()

    # --- lookups used by rules ----------------------------------------------------------------

    def instance_resource(self, *, instance_id: str | None = None, eni: str | None = None,
                          ip: str | None = None) -> dict[str, Any]:
        """GuardDuty's Resource for an instance known by id, ENI or address (best effort)."""
        found = instance_id or (eni and self.links.get(eni)) or (ip and self.links.get(ip)) or None
        details = dict(self.instances.get(found, {})) if found else {}
        if found:
            details["instanceId"] = found
        if not details.get("networkInterfaces") and (eni or ip):
            nic: dict[str, Any] = {}
            if eni:
                nic["networkInterfaceId"] = eni
            if ip:
                nic["privateIpAddress"] = ip
            details["networkInterfaces"] = [nic]
        return {"resourceType": "Instance", "instanceDetails": details}

    # --- learning -------------------------------------------------------------------------------

    def add_instance(self, instance_id: str, details: dict[str, Any] | None = None) -> None:
        if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
            return
        current = self.instances.get(instance_id)
        merged = {**(current or {}), **(details or {})}
        if merged != current:
            self.instances[instance_id] = merged
            self.dirty_instances.add(instance_id)

    def link(self, value: str | None, instance_id: str | None) -> None:
        if not value or not isinstance(value, str) or not isinstance(instance_id, str) or not instance_id.startswith("i-"):
            return
        if self.links.get(value) != instance_id:
            self.links[value] = instance_id
            self.dirty_links.add(value)
        if instance_id not in self.instances:
            self.add_instance(instance_id)

    def learn_dns(self, frame: pl.DataFrame) -> None:
        pairs = frame.filter(pl.col("instance_id").is_not_null()).select("srcaddr", "instance_id").unique()
        for ip, instance_id in pairs.iter_rows():
            self.link(ip, instance_id)

    def learn_flow(self, frame: pl.DataFrame) -> None:
        if frame["instance_id"].null_count() == frame.height:
            return  # default v2 format: no instance ids to learn from
        pairs = frame.filter(pl.col("instance_id").is_not_null()).select("interface_id", "instance_id", "srcaddr").unique()
        for eni, instance_id, _ in pairs.iter_rows():
            self.link(eni, instance_id)

    def learn_cloudtrail(self, frame: pl.DataFrame) -> None:
        launches = frame.filter(
            pl.col("event_name").is_in(["RunInstances", "CreateNetworkInterface"])
            & pl.col("response_elements").is_not_null() & pl.col("error_code").is_null()
        )
        for name, response in launches.select("event_name", "response_elements").iter_rows():
            try:
                doc = msgspec.json.decode(response)
                if name == "RunInstances":
                    for item in ((doc.get("instancesSet") or {}).get("items") or []):
                        self._learn_instance_item(item)
                else:
                    nic = doc.get("networkInterface") or {}
                    instance_id = (nic.get("attachment") or {}).get("instanceId")
                    self.link(nic.get("networkInterfaceId"), instance_id)
                    self.link(nic.get("privateIpAddress"), instance_id)
            except (msgspec.DecodeError, AttributeError, TypeError):
                # Learning is best effort: a response of an unexpected shape (forged or from an
                # API change) teaches nothing, and must not fail the object.
                continue

    def _learn_instance_item(self, item: dict[str, Any]) -> None:
        instance_id = item.get("instanceId")
        if not instance_id:
            return
        nics = []
        for nic in ((item.get("networkInterfaceSet") or {}).get("items") or []):
            nics.append({k: v for k, v in {
                "networkInterfaceId": nic.get("networkInterfaceId"), "privateIpAddress": nic.get("privateIpAddress"),
                "subnetId": nic.get("subnetId"), "vpcId": nic.get("vpcId"),
            }.items() if v})
            self.link(nic.get("networkInterfaceId"), instance_id)
            self.link(nic.get("privateIpAddress"), instance_id)
        tags = [{"key": t.get("key"), "value": t.get("value")} for t in ((item.get("tagSet") or {}).get("items") or [])]
        details = {k: v for k, v in {
            "instanceType": item.get("instanceType"), "imageId": item.get("imageId"),
            "availabilityZone": (item.get("placement") or {}).get("availabilityZone"),
            "instanceState": (item.get("instanceState") or {}).get("name"),
            "networkInterfaces": nics or None, "tags": tags or None,
        }.items() if v}
        self.add_instance(instance_id, details)
        self.link(item.get("privateIpAddress"), instance_id)

    def learn(self, kind: str, frame: pl.DataFrame) -> None:
        {"cloudtrail": self.learn_cloudtrail, "flow": self.learn_flow, "dns": self.learn_dns}[kind](frame)
