"""The moto S3/STS server and member-account helpers of the ingest tests, for the equivalence test."""

from tests.ingest.conftest import aws, member_factory, moto_endpoint  # noqa: F401
