"""GuardDuty operations, one module per area; importing this package registers every handler."""

from gdapi.operations import detectors, findings, lists, members, tags  # noqa: F401 (registration)
from gdapi.operations.base import HANDLERS

__all__ = ["HANDLERS"]
