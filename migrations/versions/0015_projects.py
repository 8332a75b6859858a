"""Projects (issue 16): the seven-step IG process as one shared object.

Every existing DPIA becomes a project of its own at the step it recorded (step 4, "co-create
the DPIA", unless someone had moved it), with the DPIA's parties as the project's parties and
its reference with ``PRJ`` for ``DPIA``. Nothing of the DPIA changes but two new columns: the
project it belongs to and its kind (``dpia``). Organisations can be reviewing bodies, members
can hold signatory roles, sign-offs record the party and capacity signed for, and drafted
fields remember their source.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("lead_organisation_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(30), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("adopted_from", sa.String(100), nullable=True),
        sa.Column("endorsement_origin", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_organisation_id"],
            ["organisations.id"],
            name=op.f("fk_projects_lead_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_projects_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_table(
        "project_parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_parties_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_project_parties_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_parties")),
    )
    op.create_index(
        op.f("ix_project_parties_project_id"), "project_parties", ["project_id"], unique=False
    )
    # Plain ALTERs, never batch mode, on ``dpias``: rebuilding it on SQLite (with foreign
    # keys on) drops the old table and would cascade-delete every participant, sign-off and
    # notification of every DPIA. So ``project_id`` has no foreign key; the services keep it.
    op.add_column("dpias", sa.Column("project_id", sa.String(100), nullable=True))
    op.add_column("dpias", sa.Column("kind", sa.String(20), nullable=False, server_default="dpia"))
    op.create_index(op.f("ix_dpias_project_id"), "dpias", ["project_id"], unique=False)
    op.create_table(
        "source_links",
        sa.Column("document_id", sa.String(100), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("source_document_id", sa.String(100), nullable=False),
        sa.Column("source_fields", sa.String(1000), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("confirmed_by", sa.String(200), nullable=False),
        sa.Column("confirmed_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["dpias.id"],
            name=op.f("fk_source_links_document_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_document_id"],
            ["dpias.id"],
            name=op.f("fk_source_links_source_document_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "field", name=op.f("pk_source_links")),
    )
    op.create_index(
        op.f("ix_source_links_source_document_id"),
        "source_links",
        ["source_document_id"],
        unique=False,
    )
    op.add_column(
        "organisations",
        sa.Column("reviewing_body", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "memberships",
        sa.Column("signatory_roles", sa.String(100), nullable=False, server_default=""),
    )
    op.add_column("signoffs", sa.Column("party_organisation_id", sa.Integer(), nullable=True))
    op.add_column(
        "signoffs", sa.Column("capacity", sa.String(30), nullable=False, server_default="")
    )
    _projects_for_existing_dpias(op.get_bind())


def _projects_for_existing_dpias(bind: sa.Connection) -> None:
    """One project per DPIA, at the step the DPIA recorded, with the DPIA's parties."""
    dpias = sa.table(
        "dpias",
        sa.column("id", sa.String),
        sa.column("title", sa.String),
        sa.column("lead_organisation_id", sa.Integer),
        sa.column("ig_step", sa.String),
        sa.column("created_by", sa.Integer),
        sa.column("created_at", TZ),
        sa.column("project_id", sa.String),
    )
    parties = sa.table(
        "dpia_parties",
        sa.column("dpia_id", sa.String),
        sa.column("organisation_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("role", sa.String),
    )
    projects = sa.table(
        "projects",
        *(sa.column(name) for name in ("id", "title", "lead_organisation_id", "step")),
        sa.column("created_by", sa.Integer),
        sa.column("created_at", TZ),
    )
    project_parties = sa.table(
        "project_parties",
        *(sa.column(name) for name in ("project_id", "organisation_id", "name", "role")),
    )
    for row in bind.execute(sa.select(dpias).order_by(dpias.c.created_at)).all():
        project_id = "PRJ-" + row.id.removeprefix("DPIA-")
        bind.execute(
            sa.insert(projects).values(
                id=project_id,
                title=row.title,
                lead_organisation_id=row.lead_organisation_id,
                step=row.ig_step or "co_create_dpia",
                created_by=row.created_by,
                created_at=row.created_at,
            )
        )
        for party in bind.execute(sa.select(parties).where(parties.c.dpia_id == row.id)).all():
            bind.execute(
                sa.insert(project_parties).values(
                    project_id=project_id,
                    organisation_id=party.organisation_id,
                    name=party.name,
                    role=party.role,
                )
            )
        bind.execute(sa.update(dpias).where(dpias.c.id == row.id).values(project_id=project_id))


def downgrade() -> None:
    op.drop_column("signoffs", "capacity")
    op.drop_column("signoffs", "party_organisation_id")
    op.drop_column("memberships", "signatory_roles")
    op.drop_column("organisations", "reviewing_body")
    op.drop_index(op.f("ix_source_links_source_document_id"), table_name="source_links")
    op.drop_table("source_links")
    op.drop_index(op.f("ix_dpias_project_id"), table_name="dpias")
    op.drop_column("dpias", "kind")
    op.drop_column("dpias", "project_id")
    op.drop_index(op.f("ix_project_parties_project_id"), table_name="project_parties")
    op.drop_table("project_parties")
    op.drop_table("projects")
