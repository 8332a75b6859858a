"""What the email bridge set aside from a reply (quoted email, signature, disclaimer) is kept
with the message for the DPIA's owners, with a mark when kept text may be quoted (issue 14).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as table:
        table.add_column(sa.Column("set_aside", sa.Text(), nullable=True))
        table.add_column(
            sa.Column("possibly_quoted", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as table:
        table.drop_column("possibly_quoted")
        table.drop_column("set_aside")
