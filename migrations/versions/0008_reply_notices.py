"""Inbound mail: when the participants were told about a merged reply.

A merged reply is told about a second later, together with the others of that second; a
crash in between used to lose the telling. ``notified_at`` is set once it is recorded; the
bridge tells about merged replies still without one. Replies merged before this revision
count as told.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "inbound_messages", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE inbound_messages SET notified_at = processed_at WHERE outcome = 'merged'")
    op.create_index(op.f("ix_inbound_messages_processed_at"), "inbound_messages", ["processed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_messages_processed_at"), table_name="inbound_messages")
    op.drop_column("inbound_messages", "notified_at")
