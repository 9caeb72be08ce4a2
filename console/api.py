"""DRF glue shared by every app's API: service errors become clear 4xx JSON answers."""

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler

from console.errors import ServiceError


def validated(serializer_class: type, data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate request data with an input serializer; DRF answers 400 with the field errors."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    return exception_handler(exc, context)
