"""Notifications, section watches, mail preferences and reply tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _participant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["participant_id"],
        ["participants.id"],
        name=op.f(f"fk_{table}_participant_id_participants"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("excerpt", sa.String(500), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.Column("email", sa.String(10), nullable=False),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_notifications_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        _participant_fk("notifications"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(op.f("ix_notifications_dpia_id"), "notifications", ["dpia_id"])
    op.create_index(op.f("ix_notifications_participant_id"), "notifications", ["participant_id"])
    op.create_index(op.f("ix_notifications_email"), "notifications", ["email"])
    op.create_table(
        "section_watches",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("watching", sa.Boolean(), nullable=False),
        _participant_fk("section_watches"),
        sa.PrimaryKeyConstraint("participant_id", "section", name=op.f("pk_section_watches")),
    )
    op.create_table(
        "section_reviewers",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        _participant_fk("section_reviewers"),
        sa.PrimaryKeyConstraint("participant_id", "section", name=op.f("pk_section_reviewers")),
    )
    op.create_table(
        "mail_preferences",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=True),
        sa.Column("last_digest_at", TZ, nullable=True),
        _participant_fk("mail_preferences"),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_mail_preferences")),
    )
    op.create_table(
        "user_mail_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_mail_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_mail_preferences")),
    )

    op.create_table(
        "reply_tokens",
        sa.Column("token", sa.String(40), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("dpia_id", sa.String(100), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        _participant_fk("reply_tokens"),
        sa.ForeignKeyConstraint(
            ["dpia_id"],
            ["dpias.id"],
            name=op.f("fk_reply_tokens_dpia_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_reply_tokens")),
    )
    op.create_index(op.f("ix_reply_tokens_participant_id"), "reply_tokens", ["participant_id"])


def downgrade() -> None:
    op.drop_table("reply_tokens")
    op.drop_table("user_mail_preferences")
    op.drop_table("mail_preferences")
    op.drop_table("section_reviewers")
    op.drop_table("section_watches")
    op.drop_table("notifications")
