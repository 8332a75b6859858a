"""Decisions on proposed risks (issue 17 follow-up): one row per DPIA, catalogue risk and
round, so that a proposal is decided once even when two processes decide it at the same
instant (the second insert fails on the primary key). Decisions taken before this revision
lived only in each DPIA's audit chain: they are copied in, in chain order.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit event kinds of domain.catalogue, as they were when this revision was written.
_KINDS = {"risk_proposal_accepted": "accepted", "risk_proposal_dismissed": "dismissed"}


def upgrade() -> None:
    decisions = op.create_table(
        "risk_decisions",
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("risk_id", sa.String(100), nullable=False),
        sa.Column("round", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(20), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_by_name", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_risk_decisions_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_risk_decisions_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("dpia_id", "risk_id", "round", name=op.f("pk_risk_decisions")),
    )
    bind = op.get_bind()
    users = {row[0] for row in bind.execute(sa.text("SELECT id FROM users"))}
    events = bind.execute(
        sa.text(
            "SELECT dpia_id, kind, actor, at, data FROM audit_events "
            "WHERE kind IN ('risk_proposal_accepted', 'risk_proposal_dismissed') "
            "ORDER BY dpia_id, position, id"
        )
    )
    rounds: dict[tuple[str, str], int] = {}
    rows = []
    for dpia_id, kind, actor, at, raw in events:
        data = json.loads(raw)
        risk_id = str(data.get("risk") or "")
        if not risk_id:
            continue
        key = (dpia_id, risk_id)
        rounds[key] = rounds.get(key, -1) + 1
        user = actor.partition(":")[2] if actor.startswith("user:") else ""
        user_id = int(user) if user.isdigit() and int(user) in users else None
        if isinstance(at, str):  # SQLite hands a raw text value to a text() query
            at = datetime.fromisoformat(at)
        rows.append(
            {
                "dpia_id": dpia_id,
                "risk_id": risk_id[:100],
                "round": rounds[key],
                "outcome": _KINDS[kind],
                "grounds": json.dumps(sorted(str(g) for g in data.get("grounds") or [])),
                "reason": str(data.get("reason") or ""),
                "ref": str(data.get("ref") or "")[:20] or None,
                "decided_by": user_id,
                "decided_by_name": str(data.get("by") or actor)[:200],
                "decided_at": at if at.tzinfo is not None else at.replace(tzinfo=UTC),
            }
        )
    if rows:
        op.bulk_insert(decisions, rows)


def downgrade() -> None:
    op.drop_table("risk_decisions")
