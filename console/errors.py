"""Domain errors raised by services; views and APIs turn them into clear 4xx answers."""


class ServiceError(Exception):
    """A request that cannot be carried out, with a message meant for the person who made it."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class PermissionDeniedError(ServiceError):
    status_code = 403
    code = "permission_denied"


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"
