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


class CommentNotFound(DocumentNotFound):
    """No comment with that id on the document (the document itself exists)."""


class InvalidInput(DomainError):
    """A value the user gave is malformed; the message names the field and the rule."""


class TooLarge(InvalidInput):
    """What was sent is larger than this installation accepts; the message names the limit."""


class Conflict(DomainError):
    """The action clashes with what exists (a duplicate email, an organisation code)."""


class DpiaLocked(Conflict):
    """The DPIA is approved or closed: no channel may change it; start a new version."""


class TooManyAttempts(AccessDenied):
    """Rate limited; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
