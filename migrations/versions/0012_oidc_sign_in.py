"""Sign-in through each organisation's own OpenID provider (issue 15): its settings and
email domains, people's identities at providers, sign-ins on their way, break-glass accounts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, not a batch: SQLite's batch copies and drops the table, which its
    # foreign keys refuse once other rows point at users.
    op.add_column(
        "users", sa.Column("break_glass", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "organisation_sign_in",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("client_secret", sa.String(1000), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False, server_default=""),
        sa.Column("jit", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("admin_group", sa.String(255), nullable=False, server_default=""),
        sa.Column("forbid_passwords", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_organisation_sign_in_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name="pk_organisation_sign_in"),
    )
    op.create_table(
        "organisation_domains",
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_organisation_domains_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain", name="pk_organisation_domains"),
    )
    op.create_index(
        "ix_organisation_domains_organisation_id", "organisation_domains", ["organisation_id"]
    )
    op.create_table(
        "external_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_external_identities_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_external_identities"),
        sa.UniqueConstraint("issuer", "subject", name="uq_external_identities_issuer"),
    )
    op.create_index("ix_external_identities_user_id", "external_identities", ["user_id"])
    op.create_table(
        "sign_in_attempts",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_path", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_sign_in_attempts_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sign_in_attempts"),
    )
    op.create_index("ix_sign_in_attempts_expires_at", "sign_in_attempts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_expires_at", "sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_index("ix_external_identities_user_id", "external_identities")
    op.drop_table("external_identities")
    op.drop_index("ix_organisation_domains_organisation_id", "organisation_domains")
    op.drop_table("organisation_domains")
    op.drop_table("organisation_sign_in")
    with op.batch_alter_table("users") as table:
        table.drop_column("break_glass")
