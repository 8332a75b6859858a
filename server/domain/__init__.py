"""Pure domain model: no I/O, no framework imports.

Exceptions raised by this layer::

    DomainError
     ├── AccessDenied          (who you are is unknown or not allowed)
     │    ├── InvalidToken     (missing, forged, malformed or expired token)
     │    ├── WrongDocument    (a valid token for another document)
     │    └── TooManyAttempts  (rate limited; retry_after seconds)
     ├── DocumentNotFound      (no such document, and this principal may not create it)
     │    └── CommentNotFound  (no comment with that id on the document)
     ├── InvalidInput          (a malformed value; the message names the field and the rule)
     │    └── TooLarge         (larger than this installation accepts)
     └── Conflict              (clashes with what exists)
          └── DpiaLocked       (approved or closed: read-only on every channel)
"""
