"""The searchable library (issue 17): one row of searchable text per document, and the
database's own full-text index over it.

``search_index`` is the same table on both databases: the title, the answers read as text
(rich text, structured values, tables, risks), the comments, the next review date, and the
sequence number of the update log it was read at. The full-text index is each database's
own: on SQLite an FTS5 table over ``search_index`` (external content, kept in step by
triggers), on PostgreSQL a stored, generated ``tsvector`` column with a GIN index.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS = [
    # porter: "sharing" finds "shared", as PostgreSQL's english configuration does.
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        title, body, comments,
        content='search_index', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER search_index_ai AFTER INSERT ON search_index BEGIN
        INSERT INTO search_fts(rowid, title, body, comments)
        VALUES (new.id, new.title, new.body, new.comments);
    END""",
    """CREATE TRIGGER search_index_ad AFTER DELETE ON search_index BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body, comments)
        VALUES ('delete', old.id, old.title, old.body, old.comments);
    END""",
    """CREATE TRIGGER search_index_au AFTER UPDATE ON search_index BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body, comments)
        VALUES ('delete', old.id, old.title, old.body, old.comments);
        INSERT INTO search_fts(rowid, title, body, comments)
        VALUES (new.id, new.title, new.body, new.comments);
    END""",
]

POSTGRES_VECTOR = [
    """ALTER TABLE search_index ADD COLUMN vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', body), 'B')
        || setweight(to_tsvector('english', comments), 'C')
    ) STORED""",
    "CREATE INDEX ix_search_index_vector ON search_index USING gin (vector)",
]


def upgrade() -> None:
    op.create_table(
        "search_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("next_review", sa.Date(), nullable=True),
        sa.Column("indexed_seq", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["dpias.id"],
            name=op.f("fk_search_index_document_id_dpias"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_index")),
        sa.UniqueConstraint("document_id", name=op.f("uq_search_index_document_id")),
    )
    op.create_index(op.f("ix_search_index_next_review"), "search_index", ["next_review"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_VECTOR:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("search_index_ai", "search_index_ad", "search_index_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_index(op.f("ix_search_index_next_review"), table_name="search_index")
    op.drop_table("search_index")
