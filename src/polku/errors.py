"""One exception hierarchy for all of Polku; each class knows its code and HTTP status.

    PolkuError                      500  internal (never shown to clients as-is)
    ├── BadRequest                  400  bad_request
    │   ├── InvalidJSON             400  invalid_json
    │   ├── InvalidField            400  invalid_field      (names the field)
    │   ├── InvalidRule             400  invalid_rule       (names the rule and the field)
    │   ├── InvalidJourney          400  invalid_journey    (names the step and the field)
    │   └── PayloadTooLarge         413  payload_too_large
    ├── Unauthorized                401  unauthorized
    ├── Forbidden                   403  forbidden
    ├── NotFound                    404  not_found
    ├── Conflict                    409  conflict
    └── Unavailable                 503  unavailable        (with Retry-After)

Foreign exceptions (SQLAlchemy, drivers) are translated where they enter (`polku.storage`),
and HTTP rendering happens in one place (`polku.http`). Messages say what happened,
which field or value, and what to do.

The message is English, for the API and the logs. For the console, which speaks the user's
language, an error also carries `message_id` (which of its code's messages it is: the code
itself unless a code has several) and `params` (the values the message names), so the
console can say the same in Finnish from its catalogue (`err_<message_id>`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidField",
    "InvalidJSON",
    "InvalidJourney",
    "InvalidRule",
    "NotFound",
    "PayloadTooLarge",
    "PolkuError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
]


class PolkuError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        hint: str | None = None,
        code: str | None = None,
        params: dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint
        if code is not None:
            self.code = code
        self.params: dict[str, Any] = dict(params or {})
        self._message_id = message_id

    @property
    def message_id(self) -> str:
        """Which message this is, for a translation: the code unless told otherwise."""
        return self._message_id or self.code

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.hint is not None:
            body["hint"] = self.hint
        return body


class BadRequest(PolkuError):
    status = 400
    code = "bad_request"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class InvalidField(BadRequest):
    code = "invalid_field"


class InvalidRule(BadRequest):
    """A buying-signal rule (`polku.signals.rules`) that cannot be used as written."""

    code = "invalid_rule"


class InvalidJourney(BadRequest):
    """A journey definition (`polku.journeys.definition`) that cannot run as written;
    `field` is the path to the problem (``steps[2:remind].template``)."""

    code = "invalid_journey"


class PayloadTooLarge(BadRequest):
    status = 413
    code = "payload_too_large"


class Unauthorized(PolkuError):
    status = 401
    code = "unauthorized"


class Forbidden(PolkuError):
    status = 403
    code = "forbidden"


class NotFound(PolkuError):
    status = 404
    code = "not_found"


class Conflict(PolkuError):
    status = 409
    code = "conflict"


class TooManyRequests(PolkuError):
    """429: the caller must wait before trying again (sign-in after repeated failures)."""

    status = 429
    code = "too_many_requests"


class Unavailable(PolkuError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
