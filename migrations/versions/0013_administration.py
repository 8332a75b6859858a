"""Administration in the browser (issue 15): deployment administrators, whether an
organisation's DPIAs may take in partners from outside, and the deployment's audit chain of
administrative actions with its head.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch: SQLite's batch copies and drops the table, which its
    # foreign keys refuse once other rows point at users or organisations.
    op.add_column(
        "users",
        sa.Column("deployment_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "organisations",
        sa.Column("outside_partners", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("head", sa.String(length=64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "admin_audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        # SHA-256 of (actor, data), covered by the link, so erasure can redact (0014).
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit_events")),
        sa.UniqueConstraint("chain", "position", name="uq_admin_audit_events_chain"),
    )
    op.create_index(
        op.f("ix_admin_audit_events_organisation_id"),
        "admin_audit_events",
        ["organisation_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_audit_events_organisation_id"), table_name="admin_audit_events")
    op.drop_table("admin_audit_events")
    op.drop_table("audit_chains")
    with op.batch_alter_table("organisations") as table:
        table.drop_column("outside_partners")
    with op.batch_alter_table("users") as table:
        table.drop_column("deployment_admin")
