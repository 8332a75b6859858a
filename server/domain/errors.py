"""The domain's exception tree (drawn in ``server.domain``'s docstring)."""


class DomainError(Exception):
    """Base of every error a user can cause; the message says what was wrong."""


class AccessDenied(DomainError):
    """The caller may not do this."""


class InvalidToken(AccessDenied):
    """The token is missing, forged, malformed or expired."""


class WrongDocument(AccessDenied):
    """The token is valid but names another document."""


class DocumentNotFound(DomainError):
    """No such document (and the caller may not create it)."""
