"""The template library (issue 17): organisations' own template versions (a draft, or a
published version that never changes) and which organisations adopted which template.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisation_templates",
        sa.Column("template_id", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("based_on", sa.String(80), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_templates_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_organisation_templates")),
    )
    op.create_index(
        op.f("ix_organisation_templates_organisation_id"),
        "organisation_templates",
        ["organisation_id"],
    )
    op.create_table(
        "template_adoptions",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.String(50), nullable=False),
        sa.Column("adopted_by", sa.String(200), nullable=False),
        sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_template_adoptions_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organisation_id", "template_id", name=op.f("pk_template_adoptions")
        ),
    )


def downgrade() -> None:
    op.drop_table("template_adoptions")
    op.drop_index(
        op.f("ix_organisation_templates_organisation_id"), table_name="organisation_templates"
    )
    op.drop_table("organisation_templates")
