"""Inbound mail: stored messages and their outcomes, attachments, address health,
the throttle of our own automatic answers, and the field a reply address points at.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("envelope_from", sa.String(254), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(300), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=True),
        sa.Column("participant_id", sa.Integer(), nullable=True),
        sa.Column("section", sa.String(100), nullable=True),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("comment_id", sa.String(60), nullable=True),
        sa.Column("from_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(250), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("processed_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    op.create_index(op.f("ix_inbound_messages_status"), "inbound_messages", ["status"])
    op.create_index(op.f("ix_inbound_messages_message_key"), "inbound_messages", ["message_key"])
    op.create_index(op.f("ix_inbound_messages_dpia_id"), "inbound_messages", ["dpia_id"])
    op.create_index(
        op.f("ix_inbound_messages_participant_id"), "inbound_messages", ["participant_id"]
    )
    op.create_table(
        "inbound_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound_messages.id"],
            name=op.f("fk_inbound_attachments_inbound_id_inbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_attachments")),
    )
    op.create_index(
        op.f("ix_inbound_attachments_inbound_id"), "inbound_attachments", ["inbound_id"]
    )
    op.create_index(op.f("ix_inbound_attachments_dpia_id"), "inbound_attachments", ["dpia_id"])
    op.create_table(
        "mail_health",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("hard_bounces", sa.Integer(), nullable=False),
        sa.Column("soft_bounces", sa.Integer(), nullable=False),
        sa.Column("last_bounce_at", TZ, nullable=True),
        sa.Column("last_reason", sa.String(500), nullable=False),
        sa.Column("paused_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_mail_health_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_mail_health")),
    )
    op.create_table(
        "auto_answers",
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("address", "reason", "day", name=op.f("pk_auto_answers")),
    )
    with op.batch_alter_table("reply_tokens") as batch:
        batch.add_column(sa.Column("field", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reply_tokens") as batch:
        batch.drop_column("field")
    op.drop_table("auto_answers")
    op.drop_table("mail_health")
    op.drop_table("inbound_attachments")
    op.drop_table("inbound_messages")
