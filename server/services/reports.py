"""What the PDF (server/services/pdf.py) and the Word file (server/services/word.py) of a
document's record show (a DPIA's, an ISA's, any step's), worked out once so that the two
cannot say different things. A document signed per party (the ISA) also prints a signature
block per party, and a reviewing body's endorsement; the DPIA's risk parts print only where
the template has a risk register (docs/exports.md).

Both print, in this order: a cover (the DPIA's title, reference, status, lead organisation,
every party with its role, the version, when it was exported and the hash of the whole
content, the one a sign-off of the whole DPIA binds to); the risk heat maps before and
after measures (the grids of server/domain/risk.py), the risk register and the action plan
as tables; each sign-off with who signed, their role and organisation, when, the decision,
the hash they signed and whether it still matches the content; then every section's fields
as server/domain/readable.py reads them. Every value is a label a person chose it by:
statuses, roles, decisions and party roles by their enums' ``label``, never their codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.domain.access import Role
from server.domain.dpias import PartyRole
from server.domain.parties import health_data_of, required_capacities
from server.domain.projects import DocumentKind
from server.domain.readable import Card, Grid, column_cells, long_date, long_time, target_label
from server.domain.risk import register_path
from server.domain.signatures import (
    ENDORSEMENT,
    REVIEWING_BODY,
    REVIEWING_BODY_LABEL,
    capacity_label,
    declares_signatories,
)
from server.domain.workflow import Decision, SignOffState
from server.services.exports import Record, RecordParty, Signature, has_field
from server.services.signoffs import SignOff

# The Jinja2 templates of the printed record; the web's past-version page shares its macros.
RECORD_TEMPLATES = Path(__file__).parent / "templates"
# The action plan's columns, in the order an IG team reads them.
ACTION_PLAN = ("title", "type", "status", "owner", "due", "risks")
HASH_LABEL = "Content hash (SHA-256)"
STALE_STATE = "STALE: changed since signed"
NOT_MATCHING = "No: changed since signed"
LANGUAGE = "en-GB"  # of the printed record, in the PDF's and the Word file's properties
NOT_SIGNED = "Not yet signed"
# What each kind of document is called on its cover and in the file's properties.
KIND_LABELS = {
    DocumentKind.IDEA: "Project idea",
    DocumentKind.PRESCREENING: "Pre-screening",
    DocumentKind.FEASIBILITY: "Feasibility assessment",
    DocumentKind.DPIA: "Data protection impact assessment",
    DocumentKind.ISA: "Information sharing agreement",
    DocumentKind.IMPLEMENTATION: "Implementation record",
    DocumentKind.EVALUATION: "Evaluation",
}
# The action plan prints only where the template has one (a screening form has none).
PLAN = "measures.plan"


@dataclass(frozen=True, slots=True)
class SignatureBlock:
    """One party's signatures: a line (a card) per capacity, signed or not."""

    organisation: str
    role: str
    lines: tuple[Card, ...]
    current: tuple[bool, ...]  # per line: False once what was signed has changed


@dataclass(frozen=True, slots=True)
class SignOffCard:
    """One sign-off as printed; ``current`` is False once what was signed has changed."""

    card: Card
    current: bool


def title_line(record: Record) -> str:
    """The document's title (PDF metadata and Word core properties, the cover's heading)."""
    return f"{record.dpia_id}: {record.title}"


def kind_label(record: Record) -> str:
    return KIND_LABELS[record.kind]


def has_risks(record: Record) -> bool:
    """Whether the record has the DPIA's risk parts (heat maps, register): its template has
    a risk register, wherever it is (``risk.register_path``), not only ``risks.register``."""
    return register_path(record.template.content) is not None


def action_plan(record: Record) -> Grid | None:
    """The action plan, for a template that has one."""
    if not has_field(record.template, PLAN):
        return None
    header, rows = column_cells(record.template, record.content, PLAN, ACTION_PLAN)
    return Grid(header, tuple(rows))


def cover_facts(record: Record) -> tuple[tuple[str, str], ...]:
    """The cover's label and value pairs; the parties follow as their own table."""
    facts = [("Reference", record.dpia_id)]
    if record.project is not None:
        facts.append(("Project", f"{record.project[0]}: {record.project[1]}"))
    facts += [
        ("Status", record.status.label),
        ("Lead organisation", record.lead_organisation),
        ("Version", f"Version {record.seq}"),
        ("Exported", long_time(record.exported_at)),
        (HASH_LABEL, record.content_hash),
    ]
    facts += [("Endorsement", _endorsement_line(e)) for e in endorsements_of(record)]
    return tuple(facts)


def party_role_label(value: str) -> str:
    if value == REVIEWING_BODY:
        return REVIEWING_BODY_LABEL
    try:
        return PartyRole(value).label
    except ValueError:
        return value


def parties(record: Record) -> Grid:
    """Every party to the DPIA and the role it has (controller, joint controller, …)."""
    return Grid(
        ("Organisation", "Role"),
        tuple((name, party_role_label(role)) for name, role in record.parties),
    )


def signoff_cards(record: Record) -> list[SignOffCard]:
    cards = []
    for signoff in record.signoffs:
        matches = record.signoff_matches(signoff)
        cards.append(SignOffCard(_card(record, signoff, matches), matches))
    return cards


def _card(record: Record, signoff: SignOff, matches: bool) -> Card:
    label = signoff.kind.label
    if signoff.kind.fixed_target is None:
        title = f"{label}: {target_label(record.template, record.content, signoff.target)}"
    elif label.endswith(" by"):  # the ICO's step-7 rows: "Measures approved by …"
        title = f"{label} {signoff.signer_name}"
    else:
        title = label
    pairs = [
        ("Signed by", signoff.signer_name),
        ("Role", _role(signoff.signer_role)),
        ("Organisation", signoff.signer_organisation),
    ]
    if signoff.party:
        pairs.append(("For the party", signoff.party))
    pairs += [
        ("Signed on", long_time(signoff.created_at)),
        ("Decision", _decision(signoff.decision)),
    ]
    if signoff.conditions:
        pairs.append(("Conditions", signoff.conditions))
    if signoff.reasons:
        pairs.append(("Reasons", signoff.reasons))
    pairs += [
        ("Version signed", f"Version {signoff.seq}"),
        *_hash_pairs(signoff.content_hash, signoff.state, matches),
    ]
    return Card(title, tuple(pairs))


def endorsements_of(record: Record) -> list[Signature]:
    """The reviewing body's endorsements (given or withheld), newest last."""
    return [s for s in record.signatures if s.kind == ENDORSEMENT]


def _endorsement_line(endorsement: Signature) -> str:
    return (
        f"{endorsement.party or endorsement.signer_organisation}: "
        f"{_decision(endorsement.decision)}, {long_date(endorsement.created_at)} "
        f"({_state(endorsement.state)})"
    )


def endorsement_cards(record: Record) -> list[SignOffCard]:
    """The endorsement block: who endorsed for which reviewing body, and whether it holds."""
    cards = []
    for endorsement in endorsements_of(record):
        matches = record.hash_matches(endorsement.target, endorsement.content_hash)
        pairs = [
            ("Reviewing body", endorsement.party or endorsement.signer_organisation),
            ("Endorsed by", endorsement.signer_name),
            ("Date", long_time(endorsement.created_at)),
            ("Decision", _decision(endorsement.decision)),
        ]
        if endorsement.conditions:
            pairs.append(("Conditions", endorsement.conditions))
        pairs += _hash_pairs(endorsement.content_hash, endorsement.state, matches)
        title = f"Endorsement by {endorsement.party or endorsement.signer_organisation}"
        cards.append(SignOffCard(Card(title, tuple(pairs)), matches))
    return cards


def has_signature_blocks(record: Record) -> bool:
    return (
        record.kind is DocumentKind.ISA
        or declares_signatories(record.template)
        or any(s.kind != ENDORSEMENT for s in record.signatures)
    )


def signature_blocks(record: Record) -> list[SignatureBlock]:
    """A block per signing party (every party but a reviewing body), a line per capacity the
    template requires and per other capacity someone signed in: the newest sign-off for the
    party in that capacity that is not revoked or replaced, or "Not yet signed"."""
    health_data = health_data_of(record.content)
    parties_ = record.project_parties or tuple(
        RecordParty(name, role, None) for name, role in record.parties
    )
    blocks = []
    for party in parties_:
        if party.role == REVIEWING_BODY:
            continue
        signed: dict[str, Signature] = {}
        for signature in record.signatures:
            if (
                signature.kind != ENDORSEMENT
                and signature.state not in (SignOffState.REVOKED, SignOffState.SUPERSEDED)
                and _signed_for(signature, party)
            ):
                signed[signature.capacity] = signature
        required = [
            c.value
            for c in required_capacities(
                record.template.content, str(party.role), health_data=health_data
            )
        ]
        lines, current = [], []
        for capacity in [*required, *(c for c in signed if c not in required)]:
            found = signed.get(capacity)
            label = capacity_label(capacity) if capacity else "Signatory"
            if found is None:
                lines.append(Card(label, (("Signed by", NOT_SIGNED),)))
                current.append(True)
                continue
            matches = record.hash_matches(found.target, found.content_hash)
            pairs = [
                ("Signed by", found.signer_name),
                ("Capacity", label),
                ("Organisation", found.signer_organisation),
                ("Signed on", long_time(found.created_at)),
                ("Decision", _decision(found.decision)),
            ]
            if found.conditions:
                pairs.append(("Conditions", found.conditions))
            lines.append(
                Card(label, (*pairs, *_hash_pairs(found.content_hash, found.state, matches)))
            )
            current.append(matches and found.state is SignOffState.VALID)
        blocks.append(
            SignatureBlock(party.name, party_role_label(party.role), tuple(lines), tuple(current))
        )
    return blocks


def _signed_for(signature: Signature, party: RecordParty) -> bool:
    if party.organisation_id is not None:
        return signature.party_organisation_id == party.organisation_id
    return signature.party == party.name


def _hash_pairs(signed_hash: str, state: SignOffState, matches: bool) -> list[tuple[str, str]]:
    """What a signature bound and whether it still holds, the same for every kind."""
    return [
        (f"{HASH_LABEL} signed", signed_hash),
        ("Matches the current content", "Yes" if matches else NOT_MATCHING),
        ("State", _state(state)),
    ]


def _state(state: SignOffState) -> str:
    return STALE_STATE if state is SignOffState.STALE else state.label


def _role(value: str) -> str:
    try:
        return Role(value).label
    except ValueError:
        return value


def _decision(value: str) -> str:
    try:
        return Decision(value).label
    except ValueError:
        return value
