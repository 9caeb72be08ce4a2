"""GuardDuty operations, one module per area; importing this package registers every handler."""

from gdapi.operations import (  # noqa: F401 (registration)
    detectors,
    filters,
    findings,
    lists,
    members,
    publishing,
    tags,
    usage,
)
from gdapi.operations.base import HANDLERS

__all__ = ["HANDLERS"]
