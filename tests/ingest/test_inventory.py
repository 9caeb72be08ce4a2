"""Inventory: learned from logs (DNS srcids, CloudTrail RunInstances) and refreshed from DescribeInstances."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from accounts.models import Account, Detector
from ingest import synthetic as syn
from ingest.inventory import Inventory
from ingest.models import InventoryInstance, InventoryLink
from ingest.pipeline import Pipeline
from ingest.tasks import inventory_refresh_all_task
from intel.matching import matcher_from_files

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_inventory_learns_instances_from_runinstances_and_dns():
    run = syn.cloudtrail_event(
        t=T0, account="123456789012", region="us-east-1", name="RunInstances", source="ec2.amazonaws.com",
        ip="198.51.100.1", response={"instancesSet": {"items": [{
            "instanceId": "i-0run", "instanceType": "t3.micro", "imageId": "ami-1", "privateIpAddress": "10.0.0.9",
            "placement": {"availabilityZone": "us-east-1a"}, "tagSet": {"items": [{"key": "Name", "value": "web"}]},
            "networkInterfaceSet": {"items": [{"networkInterfaceId": "eni-0run", "privateIpAddress": "10.0.0.9",
                                               "subnetId": "subnet-1", "vpcId": "vpc-1"}]}}]}})
    pipeline = Pipeline(matcher=matcher_from_files(include_builtin=False), inventory=Inventory())
    pipeline.process("cloudtrail", io.BytesIO(json.dumps({"Records": [run]}).encode()),
                     aws_account_id="123456789012", region="us-east-1")
    dns = syn.dns_query(t=T0, account="123456789012", region="us-east-1", name="example.com", instance="i-0dns",
                        srcaddr="10.0.0.20")
    pipeline.process("dns", io.BytesIO(syn.dns_body([dns])), aws_account_id="123456789012", region="us-east-1")
    inv = pipeline.inventory
    resource = inv.instance_resource(eni="eni-0run")
    details = resource["instanceDetails"]
    assert details["instanceId"] == "i-0run" and details["instanceType"] == "t3.micro"
    assert details["tags"] == [{"key": "Name", "value": "web"}]
    assert inv.instance_resource(ip="10.0.0.20")["instanceDetails"]["instanceId"] == "i-0dns"
    unknown = inv.instance_resource(eni="eni-0unknown", ip="10.9.9.9")["instanceDetails"]
    assert "instanceId" not in unknown and unknown["networkInterfaces"][0]["networkInterfaceId"] == "eni-0unknown"


def test_inventory_refresh_from_describe_instances(db, member_factory):
    member = member_factory("555555555555", "inventory-bucket")
    ec2 = member.client("ec2")
    reservation = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.small",
                                    TagSpecifications=[{"ResourceType": "instance",
                                                        "Tags": [{"Key": "Name", "Value": "db"}]}])
    instance = reservation["Instances"][0]
    account = Account.objects.create(aws_account_id="555555555555", name="Inv", role_arn=member.role_arn,
                                     external_id=member.external_id)
    Detector.objects.create(account=account, region="us-east-1")
    inventory_refresh_all_task.delay()
    stored = InventoryInstance.objects.get(account=account, instance_id=instance["InstanceId"])
    assert stored.learned_from == "api" and stored.details["instanceType"] == "t3.small"
    assert {"key": "Name", "value": "db"} in stored.details["tags"]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert InventoryLink.objects.get(account=account, value=eni).instance_id == instance["InstanceId"]
    assert InventoryLink.objects.get(account=account, value=instance["PrivateIpAddress"]).instance_id == instance["InstanceId"]
