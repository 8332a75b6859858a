"""Each document's last numbered ``seq`` on its row (issue 18): several processes number a
document's log by bumping this counter (one statement, the row lock orders them) instead of
taking an advisory lock and reading ``max(seq)``. Backfilled from the existing logs.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE documents SET last_seq = COALESCE("
        "(SELECT MAX(u.seq) FROM document_updates u WHERE u.document_id = documents.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("last_seq")
