"""Sign-off reminders (issue 16): when each outstanding signatory was last reminded of a
document, so that "Remind the outstanding" writes to a person at most once a day and the
sign-off page can say when.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signoff_reminders",
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_signoff_reminders_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dpia_id", "address", name=op.f("pk_signoff_reminders")),
    )


def downgrade() -> None:
    op.drop_table("signoff_reminders")
