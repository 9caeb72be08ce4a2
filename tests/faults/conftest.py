"""Reuse ingestion's moto S3/STS server on loopback and its member-account helpers."""

from tests.ingest.conftest import aws, member_factory, moto_endpoint  # noqa: F401
