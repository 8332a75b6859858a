"""Who may do what to a document, and the signed tokens that say so.

Until accounts exist, a signed, expiring token names the principal, the document and the
role. The token is an ``itsdangerous`` signature over a small JSON payload; expiry is part of
the signed payload, so a token cannot be refreshed by anyone without the key.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeSerializer

from server.domain import wording
from server.domain.errors import InvalidToken, WrongDocument

DOCUMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_TOKEN_SALT = "opendpia.collaboration-token.v1"


class Role(enum.StrEnum):
    """A participant's role on one DPIA (and the role a token carries)."""

    OWNER = "owner"
    EDITOR = "editor"
    COMMENTER = "commenter"
    VIEWER = "viewer"
    DPO = "dpo"

    @property
    def label(self) -> str:
        """The role as people name it ("DPO", "Owner")."""
        return wording.ROLES[self.value]

    @property
    def in_text(self) -> str:
        """The role inside a sentence ("an owner", "a DPO")."""
        return wording.ROLES_IN_TEXT[self.value]

    @property
    def can_write(self) -> bool:
        """May change the document itself (the CRDT)."""
        return self in (Role.OWNER, Role.EDITOR)

    @property
    def can_comment(self) -> bool:
        return self is not Role.VIEWER

    @property
    def can_manage(self) -> bool:
        """May invite, change roles and remove participants."""
        return self is Role.OWNER

    @property
    def rank(self) -> int:
        """How much the role may do to the document: read 0, comment 1, write 2."""
        return 2 if self.can_write else 1 if self.can_comment else 0

    def at_most(self, other: Role) -> Role:
        """This role, lowered to ``other`` if ``other`` may do less (a token never grants
        more than its holder has now)."""
        return other if other.rank < self.rank else self


class Channel(enum.StrEnum):
    """How a change reached the server; recorded with every logged update."""

    BROWSER = "browser"
    EMAIL = "email"
    API = "api"

    @property
    def label(self) -> str:
        return wording.CHANNELS[self.value]


@dataclass(frozen=True, slots=True)
class Grant:
    """An authenticated principal's rights over one document."""

    principal: str
    document_id: str
    role: Role
    channel: Channel
    expires_at: float
    # The browser session the grant came from (kept in memory only, never sent anywhere):
    # the session is checked again whenever the person's access is decided again.
    session: str | None = field(default=None, repr=False)

    @property
    def can_write(self) -> bool:
        return self.role.can_write


def is_valid_document_id(document_id: str) -> bool:
    return DOCUMENT_ID.fullmatch(document_id) is not None


class TokenSigner:
    """Issues and verifies collaboration tokens with the server's secret key."""

    def __init__(self, secret_key: str, *, now: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=_TOKEN_SALT)
        self._now = now

    def issue(self, *, principal: str, document_id: str, role: Role, ttl_seconds: int) -> str:
        if not is_valid_document_id(document_id):
            raise ValueError(f"{document_id!r} is not a valid document id")
        if not principal or len(principal) > 200:
            raise ValueError("a principal name of 1 to 200 characters is required")
        payload = {
            "sub": principal,
            "doc": document_id,
            "role": role.value,
            "exp": int(self._now()) + ttl_seconds,
        }
        token: str = self._serializer.dumps(payload)
        return token

    def verify(self, token: str | None, document_id: str) -> Grant:
        """Return the grant a token carries for ``document_id``, or raise why not."""
        if not token:
            raise InvalidToken("A token is required: pass ?token=… (see `opendpia token`)")
        if len(token) > 2048:
            raise InvalidToken("The token is too long to be one of ours")
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise InvalidToken("The token is not valid: it was not issued by this server") from None
        try:
            principal = str(payload["sub"])
            token_document = str(payload["doc"])
            role = Role(payload["role"])
            expires_at = float(payload["exp"])
        except (KeyError, TypeError, ValueError):
            raise InvalidToken("The token is malformed") from None
        if expires_at <= self._now():
            raise InvalidToken("The token has expired: ask for a new one")
        if token_document != document_id:
            raise WrongDocument("The token is for another document")
        return Grant(principal, document_id, role, Channel.API, expires_at)
