"""What the PDF (server/services/pdf.py) and the Word file (server/services/word.py) of a
DPIA's record show, worked out once so that the two cannot say different things.

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
from server.domain.readable import Card, Grid, column_cells, long_time, target_label
from server.domain.workflow import Decision, SignOffState
from server.services.exports import Record
from server.services.signoffs import SignOff

# The Jinja2 templates of the printed record; the web's past-version page shares its macros.
RECORD_TEMPLATES = Path(__file__).parent / "templates"
# The action plan's columns, in the order an IG team reads them.
ACTION_PLAN = ("title", "type", "status", "owner", "due", "risks")
HASH_LABEL = "Content hash (SHA-256)"
STALE_STATE = "STALE: changed since signed"
NOT_MATCHING = "No: changed since signed"
LANGUAGE = "en-GB"  # of the printed record, in the PDF's and the Word file's properties


@dataclass(frozen=True, slots=True)
class SignOffCard:
    """One sign-off as printed; ``current`` is False once what was signed has changed."""

    card: Card
    current: bool


def title_line(record: Record) -> str:
    """The document's title (PDF metadata and Word core properties, the cover's heading)."""
    return f"{record.dpia_id}: {record.title}"


def cover_facts(record: Record) -> tuple[tuple[str, str], ...]:
    """The cover's label and value pairs; the parties follow as their own table."""
    return (
        ("Reference", record.dpia_id),
        ("Status", record.status.label),
        ("Lead organisation", record.lead_organisation),
        ("Version", f"Version {record.seq}"),
        ("Exported", long_time(record.exported_at)),
        (HASH_LABEL, record.content_hash),
    )


def party_role_label(value: str) -> str:
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


def action_plan(record: Record) -> Grid:
    header, rows = column_cells(record.template, record.content, "measures.plan", ACTION_PLAN)
    return Grid(header, tuple(rows))


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
        (f"{HASH_LABEL} signed", signoff.content_hash),
        ("Matches the current content", "Yes" if matches else NOT_MATCHING),
        ("State", state_label(signoff)),
    ]
    return Card(title, tuple(pairs))


def state_label(signoff: SignOff) -> str:
    return STALE_STATE if signoff.state is SignOffState.STALE else signoff.state.label


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
