"""Sign-off and history: section workflow states, sign-off records bound to content, the
per-DPIA audit chain (with its head on the DPIA row), and where the project stands in the
LOTI/IGfL information-governance process.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _dpia_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["dpia_id"], ["dpias.id"], name=op.f(f"fk_{table}_dpia_id_dpias"), ondelete="CASCADE"
    )


def upgrade() -> None:
    # ADD COLUMN with a constant default works on SQLite and PostgreSQL without a table copy.
    op.add_column(
        "dpias",
        sa.Column("ig_step", sa.String(30), nullable=False, server_default="co_create_dpia"),
    )
    op.add_column(
        "dpias", sa.Column("audit_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "dpias", sa.Column("audit_head", sa.String(64), nullable=False, server_default="")
    )
    op.create_table(
        "section_states",
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        _dpia_fk("section_states"),
        sa.PrimaryKeyConstraint("dpia_id", "section", name=op.f("pk_section_states")),
    )
    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("signer_user_id", sa.Integer(), nullable=False),
        sa.Column("signer_participant_id", sa.Integer(), nullable=False),
        sa.Column("signer_name", sa.String(200), nullable=False),
        sa.Column("signer_role", sa.String(20), nullable=False),
        sa.Column("signer_organisation", sa.String(200), nullable=False),
        sa.Column("party", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(30), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("stale_at", TZ, nullable=True),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
        _dpia_fk("signoffs"),
        sa.ForeignKeyConstraint(
            ["signer_user_id"], ["users.id"], name=op.f("fk_signoffs_signer_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signoffs")),
    )
    op.create_index(op.f("ix_signoffs_dpia_id"), "signoffs", ["dpia_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("section", sa.String(100), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        _dpia_fk("audit_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("dpia_id", "position", name=op.f("uq_audit_events_dpia_id")),
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_index(op.f("ix_signoffs_dpia_id"), table_name="signoffs")
    op.drop_table("signoffs")
    op.drop_table("section_states")
    with op.batch_alter_table("dpias") as batch:
        batch.drop_column("audit_head")
        batch.drop_column("audit_count")
        batch.drop_column("ig_step")
