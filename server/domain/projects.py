"""Projects: the seven-step IG process as one shared object (issue 16).

A data collaboration project owns its partner organisations and one document per step it has
started. Every step's record is a co-edited document exactly like a DPIA (a row of ``dpias``
with its own template and a ``kind``), so the real-time engine, history, comments, email
replies, sign-offs and exports serve all of them unchanged. The project's step says where it
stands; the documents say what was written. See docs/projects.md.
"""

from __future__ import annotations

import enum

from server.domain import wording
from server.domain.access import Role
from server.domain.errors import InvalidInput
from server.domain.workflow import IgStep


class DocumentKind(enum.StrEnum):
    """What a project's document records: one kind per step of the IG process."""

    IDEA = "idea"
    PRESCREENING = "prescreening"
    FEASIBILITY = "feasibility"
    DPIA = "dpia"
    ISA = "isa"
    IMPLEMENTATION = "implementation"
    EVALUATION = "evaluation"

    @property
    def step(self) -> IgStep:
        return _STEPS[self]

    @property
    def label(self) -> str:
        """What the step's record is called ("Pre-screening")."""
        return wording.DOCUMENT_KINDS[self.value]

    @property
    def template_id(self) -> str:
        """The template a new document of this kind is made from."""
        return _TEMPLATES[self]

    @property
    def suffix(self) -> str:
        """What follows the project's reference in this document's reference."""
        return _SUFFIXES[self]

    @classmethod
    def for_step(cls, step: IgStep) -> DocumentKind:
        return next(kind for kind in cls if kind.step is step)


_STEPS = {
    DocumentKind.IDEA: IgStep.GENERATE_IDEAS,
    DocumentKind.PRESCREENING: IgStep.REVIEW_CONCEPT,
    DocumentKind.FEASIBILITY: IgStep.ASSESS_FEASIBILITY,
    DocumentKind.DPIA: IgStep.CO_CREATE_DPIA,
    DocumentKind.ISA: IgStep.COMPLETE_ISA,
    DocumentKind.IMPLEMENTATION: IgStep.IMPLEMENT,
    DocumentKind.EVALUATION: IgStep.EVALUATE_AND_LEARN,
}
_TEMPLATES = {
    DocumentKind.IDEA: "project-idea",
    DocumentKind.PRESCREENING: "project-prescreening",
    DocumentKind.FEASIBILITY: "project-feasibility",
    DocumentKind.DPIA: "uk-dpia",
    DocumentKind.ISA: "uk-isa",
    DocumentKind.IMPLEMENTATION: "project-implementation",
    DocumentKind.EVALUATION: "project-evaluation",
}
_SUFFIXES = {
    DocumentKind.IDEA: "IDEA",
    DocumentKind.PRESCREENING: "SCREEN",
    DocumentKind.FEASIBILITY: "FEAS",
    DocumentKind.DPIA: "DPIA",
    DocumentKind.ISA: "ISA",
    DocumentKind.IMPLEMENTATION: "IMPL",
    DocumentKind.EVALUATION: "EVAL",
}


def project_reference(organisation_code: str, year: int, number: int) -> str:
    return f"PRJ-{organisation_code}-{year}-{number}"


def project_reference_of_dpia(dpia_id: str) -> str:
    """The reference of the project an existing DPIA became (migration 0015): its own
    reference with ``PRJ`` for ``DPIA``, so the two are recognisably one."""
    return "PRJ-" + dpia_id.removeprefix("DPIA-")


def document_reference(project_id: str, kind: DocumentKind) -> str:
    """A step document's reference. A project's DPIA keeps ``DPIA-`` references (made by
    ``domain.dpias.reference``) because people quote them; other steps hang off the project."""
    return f"{project_id}-{kind.suffix}"


def check_document_kind(raw: str) -> DocumentKind:
    try:
        return DocumentKind(raw)
    except ValueError:
        raise InvalidInput(
            f"There is no project step record {raw[:30]!r}: choose "
            + ", ".join(kind.value for kind in DocumentKind)
        ) from None


# Who stands highest when one person takes part in several documents of a project.
_RANK = {Role.VIEWER: 0, Role.COMMENTER: 1, Role.DPO: 2, Role.EDITOR: 3, Role.OWNER: 4}


def higher_role(first: Role, second: Role) -> Role:
    """The higher of two roles one person holds in a project's documents (the first on a
    tie): what a new document of the project gives them, and what the project page shows."""
    return second if _RANK[second] > _RANK[first] else first
