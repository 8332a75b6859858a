"""Who may join a document's collaboration channel, and as what, now.

A grant is decided when a connection opens and decided again, from the current truth,
whenever the document's access changes (``recheck``): a role change, a removal, a lock, a
suspended account or an ended session. Tokens that stand in for a person (``user:<id>``,
``participant:<id>``) never grant more than that person has at that moment.
"""

from __future__ import annotations

import time
from dataclasses import replace

from server.domain.access import Channel, Grant, Role, TokenSigner, is_valid_document_id
from server.domain.errors import AccessDenied, DocumentNotFound, InvalidToken
from server.services.accounts import SESSION_LIFETIME, AccountService
from server.services.dpias import DpiaService

REMOVED = "You no longer take part in this DPIA"
SUSPENDED = "Your account is suspended: ask your organisation's administrator"


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
            raise DocumentNotFound("There is no such document")
        return self._signer.verify(token, document_id)

    async def authorize(
        self, document_id: str, *, token: str | None, session: str | None = None
    ) -> Grant:
        if not is_valid_document_id(document_id):
            raise DocumentNotFound(
                "A document id is 1 to 100 letters, digits, '.', '_', ':' or '-'"
            )
        if token or self._accounts is None or self._dpias is None or not session:
            return await self.recheck(self._signer.verify(token, document_id))
        user = await self._accounts.user_for_session(session)
        if user is None:
            raise InvalidToken("Your session has ended: sign in again")
        access = await self._dpias.access(user, document_id)
        expires = time.time() + SESSION_LIFETIME.total_seconds()
        return Grant(f"user:{user.id}", document_id, access.role, Channel.BROWSER, expires, session)

    async def recheck(self, grant: Grant) -> Grant:
        """The grant as the current truth has it, or the DomainError that refuses it."""
        if self._accounts is None or self._dpias is None:
            return grant
        kind, _, raw_id = grant.principal.partition(":")
        if kind not in ("user", "participant") or not raw_id.isdigit() or len(raw_id) > 18:
            return grant  # a tooling token that stands for nobody in particular
        person = int(raw_id)
        if kind == "user" and not await self._accounts.is_active(person):
            raise AccessDenied(SUSPENDED)
        if grant.session is not None:
            user = await self._accounts.user_for_session(grant.session)
            if user is None or user.id != person:
                # Suspending ends the sessions in the same transaction, so a session found
                # gone may be a suspension made between the two reads: that is the reason.
                if kind == "user" and not await self._accounts.is_active(person):
                    raise AccessDenied(SUSPENDED)
                raise InvalidToken("Your session has ended: sign in again")
        if kind == "user":
            role = await self._dpias.current_role(grant.document_id, user_id=person)
        else:
            role = await self._dpias.current_role(grant.document_id, participant_id=person)
        if role is None:
            raise AccessDenied(REMOVED)
        current = role if grant.session is not None else grant.role.at_most(role)
        return grant if current is grant.role else replace(grant, role=current)
