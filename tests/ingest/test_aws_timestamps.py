"""ingest.aws.aws_timestamp: the same datetimes as botocore's (dateutil) parser for what AWS writes,
and botocore's parser, errors included, for anything else."""

from datetime import UTC

import pytest
from botocore.utils import parse_timestamp

from ingest.aws import aws_timestamp

VALUES = [
    "2024-05-01T12:00:00.000Z",  # ListObjectsV2 LastModified
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00.123456+02:00",
    "Sat, 28 Nov 2026 05:07:36 GMT",  # the Last-Modified header of a GET
    "Sat, 28 Nov 2026 05:07:36 -0000",
    1700000000,  # epoch seconds (JSON protocols)
    1700000000.5,
    "1700000000",
    "2024-05-01",  # date only: botocore's answer (naive), not ours
]


@pytest.mark.parametrize("value", VALUES)
def test_same_datetime_as_botocore(value):
    ours, theirs = aws_timestamp(value), parse_timestamp(value)
    assert ours == theirs and (ours.tzinfo is None) == (theirs.tzinfo is None)


@pytest.mark.parametrize("value", ["", "yesterday-ish", "Sat, 99 Nov 2026 05:07:36 GMT"])
def test_unparseable_values_fail_as_in_botocore(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)
    with pytest.raises(ValueError):
        aws_timestamp(value)


def test_member_clients_parse_listing_times_with_it(db, member_factory):
    from accounts.models import Account
    from ingest.aws import client_for

    member = member_factory("135792468024", "times-trail")
    member.put("times-trail", "AWSLogs/135792468024/CloudTrail/us-east-1/2024/05/01/a.json.gz", b"{}")
    account = Account.objects.create(aws_account_id="135792468024", name="Times", role_arn=member.role_arn,
                                     external_id=member.external_id)
    s3 = client_for(account, "s3", "us-east-1")
    modified = s3.list_objects_v2(Bucket="times-trail")["Contents"][0]["LastModified"]
    header = s3.get_object(Bucket="times-trail", Key="AWSLogs/135792468024/CloudTrail/us-east-1/2024/05/01/a.json.gz")[
        "LastModified"]
    # datetime's own UTC, not dateutil's tzutc(): parsed by aws_timestamp, not botocore's default.
    assert modified.tzinfo is UTC and header.tzinfo is UTC
    assert header == modified.replace(microsecond=0)
