"""Review cycles (issue 17): which reminder of a document's review date went out (one row
per document, review date and offset, so that each is sent once, even across restarts and
processes), and which day each organisation DPO had the list of overdue reviews.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_reminders",
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emailed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_review_reminders_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dpia_id", "due", "days_before", name=op.f("pk_review_reminders")),
    )
    op.create_table(
        "overdue_review_digests",
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("address", "day", name=op.f("pk_overdue_review_digests")),
    )


def downgrade() -> None:
    op.drop_table("overdue_review_digests")
    op.drop_table("review_reminders")
