"""Who may join a document's collaboration channel."""

from __future__ import annotations

from server.domain.access import Grant, TokenSigner, is_valid_document_id
from server.domain.errors import DocumentNotFound


class CollaborationAccess:
    """Turns the credentials of a connection into a grant, or refuses it."""

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    def authorize(self, document_id: str, token: str | None) -> Grant:
        if not is_valid_document_id(document_id):
            raise DocumentNotFound(
                "a document id is 1 to 100 letters, digits, '.', '_', ':' or '-'"
            )
        return self._signer.verify(token, document_id)
