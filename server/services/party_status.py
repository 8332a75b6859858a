"""What a project's sign-off by every party stands at (issue 16; docs/projects.md): each
DPIA's and ISA's required signatures and endorsements, and the signatures waiting for a
person. ``services.parties.PartySignOffService`` reads them; ``services.party_reminders``
writes to whoever is outstanding."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.domain.parties import (
    REVIEWING_BODY,
    Capacity,
    Party,
    RequiredSignature,
    SignatureState,
    SigningChoice,
    all_signed,
)
from server.domain.projects import DocumentKind
from server.services.projects import ProjectView
from server.services.signoffs import SignOff

# The documents every party signs: the DPIA and the ISA.
SIGNED_KINDS = (DocumentKind.DPIA, DocumentKind.ISA)


@dataclass(frozen=True, slots=True)
class DocumentSignOffs:
    """One document's party signatures and endorsements, as ``status`` reports them."""

    document_id: str
    kind: DocumentKind
    title: str
    locked: bool
    required: list[RequiredSignature]
    endorsements: list[SignOff]  # valid or stale, newest last
    reminded: dict[str, datetime]  # address → when last reminded

    @property
    def approved(self) -> bool:
        return all_signed(self.required)

    @property
    def outstanding(self) -> list[RequiredSignature]:
        return [r for r in self.required if r.state is not SignatureState.SIGNED]

    @property
    def endorsement(self) -> SignOff | None:
        """The reviewing body's latest word (valid or stale)."""
        return self.endorsements[-1] if self.endorsements else None

    @property
    def last_reminded(self) -> datetime | None:
        return max(self.reminded.values(), default=None)

    def for_party(self, organisation_id: int | None, name: str) -> list[RequiredSignature]:
        return [
            r
            for r in self.required
            if r.party.organisation_id == organisation_id and r.party.name == name
        ]


@dataclass(frozen=True, slots=True)
class ProjectSignOffs:
    """A project's sign-off status across its DPIA and ISA, and what the viewer may do."""

    project_id: str
    title: str
    parties: list[Party]
    documents: list[DocumentSignOffs]
    can_remind: bool
    options: list[SigningChoice]  # the party and capacity pairs the viewer may sign for
    reviewing_party: Party | None  # the reviewing body the viewer endorses for
    adopted_from: str | None
    endorsement_origin: dict[str, Any] | None

    @property
    def approved(self) -> bool:
        """Approved: it has a DPIA or an ISA, and every one it has is approved."""
        return bool(self.documents) and all(d.approved for d in self.documents)

    def document(self, kind: DocumentKind) -> DocumentSignOffs | None:
        return next((d for d in self.documents if d.kind is kind), None)

    @property
    def signing_parties(self) -> list[Party]:
        return [p for p in self.parties if p.role != REVIEWING_BODY]

    @property
    def reviewing_bodies(self) -> list[Party]:
        return [p for p in self.parties if p.role == REVIEWING_BODY]


@dataclass(frozen=True, slots=True)
class Outstanding:
    """A signature waiting for a person: the document, the party and the capacity."""

    project_id: str
    project_title: str
    document_id: str
    kind: DocumentKind
    party: str
    party_organisation_id: int
    capacity: Capacity
    stale: bool


def parties_of(view: ProjectView) -> list[Party]:
    """The project's parties as ``domain.parties`` reads them."""
    return [Party(p.id, p.organisation_id, p.name, str(p.role)) for p in view.parties]


def aware(moment: datetime) -> datetime:
    """A stored moment with its time zone (SQLite gives it back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
