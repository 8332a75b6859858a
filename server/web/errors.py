"""Domain errors → HTTP statuses and WebSocket close codes, in one place."""

from __future__ import annotations

from server.domain.errors import (
    AccessDenied,
    Conflict,
    DocumentNotFound,
    DomainError,
    InvalidInput,
    InvalidToken,
    TooLarge,
    TooManyAttempts,
    WrongDocument,
)
from server.domain.signin import ProviderUnavailable

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

_CLOSE_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidToken, CLOSE_UNAUTHORIZED),
    (WrongDocument, CLOSE_FORBIDDEN),
    (AccessDenied, CLOSE_FORBIDDEN),
    (DocumentNotFound, CLOSE_NOT_FOUND),
]

_HTTP_STATUSES: list[tuple[type[DomainError], int]] = [
    (InvalidToken, 401),
    (TooManyAttempts, 429),  # before AccessDenied, which it specialises
    (AccessDenied, 403),
    (DocumentNotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),  # before InvalidInput, which it specialises
    (InvalidInput, 400),
    (ProviderUnavailable, 502),  # an organisation's identity provider did not answer
]


def close_code_for(error: DomainError) -> int:
    for kind, code in _CLOSE_CODES:
        if isinstance(error, kind):
            return code
    return 4400


def http_status_for(error: DomainError) -> int:
    for kind, status in _HTTP_STATUSES:
        if isinstance(error, kind):
            return status
    return 400


def close_reason(error: DomainError | str) -> str:
    """The reason to close with: WebSocket close reasons are at most 123 bytes of UTF-8."""
    encoded = str(error).encode("utf-8")
    if len(encoded) <= 123:
        return str(error)
    return encoded[:120].decode("utf-8", errors="ignore") + "..."
