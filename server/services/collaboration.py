"""Who may join a document's collaboration channel, and as what."""

from __future__ import annotations

import time

from server.domain.access import Channel, Grant, Role, TokenSigner, is_valid_document_id
from server.domain.errors import DocumentNotFound, InvalidToken
from server.services.accounts import SESSION_LIFETIME, AccountService
from server.services.dpias import DpiaService


class CollaborationAccess:
    """Turns the credentials of a connection into a grant, or refuses it.

    An explicit token (API and tooling clients) wins; otherwise the browser's session
    cookie names a user, who must be a participant of the DPIA.
    """

    def __init__(
        self,
        signer: TokenSigner,
        accounts: AccountService | None = None,
        dpias: DpiaService | None = None,
    ) -> None:
        self._signer = signer
        self._accounts = accounts
        self._dpias = dpias

    def issue_token(self, principal: str, document_id: str, role: Role, ttl_seconds: int) -> str:
        return self._signer.issue(
            principal=principal, document_id=document_id, role=role, ttl_seconds=ttl_seconds
        )

    def verify_token(self, token: str, document_id: str) -> Grant:
        if not is_valid_document_id(document_id):
            raise DocumentNotFound("there is no such document")
        return self._signer.verify(token, document_id)

    async def authorize(
        self, document_id: str, *, token: str | None, session: str | None = None
    ) -> Grant:
        if not is_valid_document_id(document_id):
            raise DocumentNotFound(
                "a document id is 1 to 100 letters, digits, '.', '_', ':' or '-'"
            )
        if token or self._accounts is None or self._dpias is None or not session:
            return self._signer.verify(token, document_id)
        user = await self._accounts.user_for_session(session)
        if user is None:
            raise InvalidToken("your session has ended: sign in again")
        access = await self._dpias.access(user, document_id)
        expires = time.time() + SESSION_LIFETIME.total_seconds()
        return Grant(f"user:{user.id}", document_id, access.role, Channel.BROWSER, expires)
