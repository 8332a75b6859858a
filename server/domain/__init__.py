"""Pure domain model: no I/O, no framework imports.

Exceptions raised by this layer::

    DomainError
     ├── AccessDenied          (who you are is unknown or not allowed)
     │    ├── InvalidToken     (missing, forged, malformed or expired token)
     │    └── WrongDocument    (a valid token for another document)
     └── DocumentNotFound      (no such document, and this principal may not create it)
"""
