"""DRF glue shared by every app's API: service errors become clear 4xx JSON answers."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler

from console.errors import ServiceError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    return exception_handler(exc, context)
