"""The answers each approved document's review date is read from (issue 17), kept with the
log position and template they were read at, so that a process starting up does not read
every approved document whole to find its review date again.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_answers",
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.String(100), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_review_answers_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dpia_id", name=op.f("pk_review_answers")),
    )


def downgrade() -> None:
    op.drop_table("review_answers")
