"""The searchable library: the index of every document's text, and searching it.

``SearchIndex`` reads a document as committed (the update store: snapshot and tail, every
process's updates included) and writes its row of ``search_index``; the database's own
full-text index follows (SQLite: FTS5 triggers; PostgreSQL: the generated ``tsvector``).
A row is only ever replaced by one read at the same or a later ``seq`` of the log, so when
several processes index one document the newest reading wins whatever the order they
finish in.

``SearchService.search`` asks the database for the best matches among the documents the
person takes part in: the participant check is in the query, before ranking and the
limit, so a document someone does not take part in is never a result, however well it
matches, and never takes the place of one they may see. Passages come from the
database's highlighter (FTS5 ``snippet``, PostgreSQL ``ts_headline``), computed only for
the page of results shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from pycrdt import Map
from sqlalchemy import Table, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.content import document_content
from server.domain.documents import StoredDocument, root_names
from server.domain.dpias import DpiaStatus
from server.domain.projects import DocumentKind
from server.domain.search import (
    CANDIDATES,
    HIT_END,
    HIT_START,
    PAGE_SIZE,
    Searchable,
    SearchQuery,
    comment_texts,
    has_hit,
    passage,
    searchable,
)
from server.domain.templates import Template, load_template
from server.services.accounts import CurrentUser
from server.services.template_library import TemplateLibrary
from server.storage.database import engine_of, writer_turn
from server.storage.models import Dpia, Organisation, SearchIndexRow
from server.storage.updates import SqlUpdateStore

SNIPPET_WORDS = 24


@dataclass(frozen=True, slots=True)
class SearchResult:
    document_id: str
    title: str
    kind: DocumentKind
    status: DpiaStatus
    template_id: str
    template_title: str
    lead_organisation: str
    project_id: str | None
    next_review: date | None
    passage: tuple[tuple[str, bool], ...]  # (text, is a match) runs; escaped when shown


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[SearchResult]
    more: bool  # a next page exists


class SearchIndex:
    """Writes documents' rows of the search index from their committed content."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: SqlUpdateStore) -> None:
        self._sessions = sessions
        self._store = store
        self._templates = TemplateLibrary(sessions)
        self._postgres = engine_of(sessions).dialect.name == "postgresql"
        self.indexed = 0

    async def index(self, document_ids: Iterable[str]) -> int:
        """Read each document as committed and write its row, all in one transaction; the
        number written (a document that no longer exists is skipped)."""
        ids = sorted(set(document_ids))
        if not ids:
            return 0
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Dpia.id, Dpia.title, Dpia.template_id, Dpia.template_version).where(
                        Dpia.id.in_(ids)
                    )
                )
            ).all()
        readings: list[tuple[str, int, Searchable]] = []
        for document_id, title, template_id, version in rows:
            stored = await self._store.load(document_id)
            if stored is None:
                continue
            # An organisation's template may have been published by another process.
            template = await self._templates.template(template_id, version)
            found = await asyncio.to_thread(_read, stored, template, title)
            readings.append((document_id, stored.last_seq, found))
        await self.write(readings)
        return len(readings)

    async def write(self, readings: Sequence[tuple[str, int, Searchable]]) -> None:
        """Upsert rows (document, seq read at, text); an older reading never replaces a
        newer one."""
        if not readings:
            return
        now = datetime.now(UTC)
        insert = pg_insert if self._postgres else sqlite_insert
        table = cast(Table, SearchIndexRow.__table__)
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["document_id"],
            set_={
                "title": statement.excluded.title,
                "body": statement.excluded.body,
                "comments": statement.excluded.comments,
                "next_review": statement.excluded.next_review,
                "indexed_seq": statement.excluded.indexed_seq,
                "indexed_at": statement.excluded.indexed_at,
            },
            where=statement.excluded.indexed_seq >= table.c.indexed_seq,
        )
        values = [
            {
                "document_id": document_id,
                "title": found.title,
                "body": found.body,
                "comments": found.comments,
                "next_review": found.next_review,
                "indexed_seq": seq,
                "indexed_at": now,
            }
            for document_id, seq, found in readings
        ]
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            for row in values:  # one statement per row: upserts do not batch on SQLite
                await session.execute(statement, row)
        self.indexed += len(values)

    async def stale(self, limit: int = 200) -> list[str]:
        """Documents whose row is missing or behind their log or title (made without an
        editor, renamed, or indexed by a process that stopped before it could)."""
        query = text(
            """
            SELECT d.id FROM dpias d
            LEFT JOIN search_index s ON s.document_id = d.id
            WHERE s.id IS NULL OR s.title <> d.title
               OR s.indexed_seq < (SELECT max(u.seq) FROM document_updates u
                                   WHERE u.document_id = d.id)
            ORDER BY d.id LIMIT :limit
            """
        )
        async with self._sessions() as session:
            return list((await session.scalars(query, {"limit": limit})).all())


def _read(stored: StoredDocument, template: Template, title: str) -> Searchable:
    doc = stored.to_doc()
    content = document_content(doc, template)
    comments: dict[str, Any] = {}
    if "comments" in root_names(doc):
        comments = {key: _plain(value) for key, value in doc.get("comments", type=Map).items()}
    return searchable(template, content, title, comment_texts(comments))


def _plain(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


class SearchService:
    """Full-text search over the documents a person takes part in."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, candidates: int = CANDIDATES
    ) -> None:
        self._sessions = sessions
        self._postgres = engine_of(sessions).dialect.name == "postgresql"
        self._candidates = candidates

    async def search(
        self, user: CurrentUser, query: SearchQuery, *, today: date | None = None
    ) -> SearchPage:
        if query.empty:
            return SearchPage([], False)
        today = today or datetime.now(UTC).date()
        params: dict[str, Any] = {
            "user_id": user.id,
            "limit": PAGE_SIZE + 1,
            "offset": query.offset,
        }
        filters = _filters(query, today, params, postgres=self._postgres)
        if not query.words:
            found = await self._browse(filters, params)
        elif self._postgres:
            found = await self._postgres_search(query, filters, params)
        else:
            found = await self._sqlite_search(query, filters, params)
        return SearchPage(await self._results(found[:PAGE_SIZE]), len(found) > PAGE_SIZE)

    async def _browse(self, filters: str, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Filters alone: the documents in title order, no passage."""
        sql = f"""
            SELECT s.document_id, '' FROM search_index s JOIN dpias d ON d.id = s.document_id
            WHERE {_VISIBLE} {filters}
            ORDER BY lower(d.title), d.id LIMIT :limit OFFSET :offset
        """
        async with self._sessions() as session:
            return [(r[0], r[1]) for r in await session.execute(text(sql), params)]

    async def _sqlite_search(
        self, query: SearchQuery, filters: str, params: dict[str, Any]
    ) -> list[tuple[str, str]]:
        params["match"] = query.fts5_match()
        params["candidates"] = self._candidates
        # Ranking (title weighs most, comments least) reads only the newest CANDIDATES
        # matches the person may see: the oldest of them is found first, by rowid, which
        # FTS5 walks without ranking; then only rows from it on are ranked.
        floor = f"""
            SELECT min(rowid) FROM (
                SELECT search_fts.rowid AS rowid FROM search_fts
                JOIN search_index s ON s.id = search_fts.rowid
                JOIN dpias d ON d.id = s.document_id
                WHERE search_fts MATCH :match AND {_VISIBLE} {filters}
                ORDER BY search_fts.rowid DESC LIMIT :candidates
            )
        """
        ranked = f"""
            SELECT s.id, s.document_id FROM search_fts
            JOIN search_index s ON s.id = search_fts.rowid
            JOIN dpias d ON d.id = s.document_id
            WHERE search_fts MATCH :match AND search_fts.rowid >= :floor AND {_VISIBLE} {filters}
            ORDER BY bm25(search_fts, 10.0, 1.0, 0.5), d.id LIMIT :limit OFFSET :offset
        """
        passages = """
            SELECT rowid,
                   snippet(search_fts, 1, :start, :end, '…', :words),
                   snippet(search_fts, 2, :start, :end, '…', :words),
                   snippet(search_fts, 0, :start, :end, '…', :words)
            FROM search_fts WHERE search_fts MATCH :match AND rowid IN :ids
        """
        async with self._sessions() as session:
            params["floor"] = await session.scalar(text(floor), params)
            if params["floor"] is None:
                return []
            hits = (await session.execute(text(ranked), params)).all()
            if not hits:
                return []
            marked = {
                row[0]: _best(row[1], row[2], row[3])
                for row in await session.execute(
                    text(passages).bindparams(bindparam("ids", expanding=True)),
                    {
                        "match": params["match"],
                        "ids": [row[0] for row in hits],
                        "start": HIT_START,
                        "end": HIT_END,
                        "words": SNIPPET_WORDS,
                    },
                )
            }
        return [(document_id, marked.get(row_id, "")) for row_id, document_id in hits]

    async def _postgres_search(
        self, query: SearchQuery, filters: str, params: dict[str, Any]
    ) -> list[tuple[str, str]]:
        params.update(
            words=query.plain_text(),
            options=(
                f"StartSel={HIT_START}, StopSel={HIT_END}, MaxWords={SNIPPET_WORDS}, "
                "MinWords=8, MaxFragments=1, FragmentDelimiter=…"
            ),
        )
        params.update(candidates=self._candidates, start=HIT_START)
        # The window: the newest CANDIDATES matches the person may see. Read through the GIN
        # index's bitmap (exact for these queries, so no row's vector is read), never by
        # walking the table and testing each vector: the planner does not count the cost of
        # reading a long vector, and would (a word in every document looks unselective).
        dpias = "JOIN dpias d ON d.id = s.document_id" if "d." in filters else ""
        window = f"""
            SELECT s.id FROM search_index s {dpias}
            WHERE s.vector @@ plainto_tsquery('english', :words)
              AND s.document_id IN (SELECT p.dpia_id FROM participants p
                                    WHERE p.user_id = :user_id) {filters}
            ORDER BY s.id DESC LIMIT :candidates
        """
        # ts_rank reads each vector of the window; the passage is computed for the page
        # alone: from the answers (the part around a query word's stem first, the whole if
        # that part has no match), and from the comments or title only when the answers
        # do not match.
        ranked = """
            WITH hits AS (
                SELECT s.id, ts_rank(s.vector, plainto_tsquery('english', :words)) AS rank
                FROM search_index s WHERE s.id = ANY(:window)
                ORDER BY rank DESC, s.document_id LIMIT :limit OFFSET :offset
            ),
            stem AS (
                SELECT (tsvector_to_array(to_tsvector('english', :words)))[1] AS word
            ),
            passages AS MATERIALIZED (
                SELECT hits.id, hits.rank, s.document_id, s.body AS whole, s.comments,
                       s.title, q.query,
                       -- Most of a headline's cost is parsing the text: parse the part
                       -- around the first place a query word's stem appears, if any.
                       ts_headline('english', CASE WHEN near > 0
                           THEN substr(s.body, greatest(1, near - 400), 1200)
                           ELSE s.body END, q.query, :options) AS tried,
                       near
                FROM hits JOIN search_index s ON s.id = hits.id,
                     (SELECT plainto_tsquery('english', :words) AS query) q,
                     stem,
                     LATERAL (SELECT strpos(lower(s.body), stem.word) AS near) found
            ),
            bodies AS MATERIALIZED (
                SELECT *, CASE WHEN position(:start IN tried) = 0 AND near > 0
                               THEN ts_headline('english', whole, query, :options)
                               ELSE tried END AS body
                FROM passages
            )
            SELECT document_id, body,
                   CASE WHEN position(:start IN body) = 0
                        THEN ts_headline('english', comments, query, :options) END,
                   CASE WHEN position(:start IN body) = 0
                        THEN ts_headline('english', title, query, :options) END
            FROM bodies ORDER BY rank DESC, document_id
        """
        async with self._sessions() as session:
            # Planned for these words: a generic plan (what a prepared statement gets after
            # a few runs) cannot tell a word in every document from a rare one.
            await session.execute(_SETTINGS, {"scan": "off"})
            ids = list((await session.scalars(text(window), params)).all())
            if not ids:
                return []
            await session.execute(_SETTINGS, {"scan": "on"})
            rows = await session.execute(text(ranked), {**params, "window": ids})
            return [(row[0], _best(row[1], row[2], row[3])) for row in rows]

    async def _results(self, found: list[tuple[str, str]]) -> list[SearchResult]:
        if not found:
            return []
        ids = [document_id for document_id, _ in found]
        async with self._sessions() as session:
            rows = {
                row.id: row
                for row in (
                    await session.execute(
                        select(
                            Dpia.id,
                            Dpia.title,
                            Dpia.kind,
                            Dpia.status,
                            Dpia.template_id,
                            Dpia.project_id,
                            Organisation.name,
                            SearchIndexRow.next_review,
                        )
                        .join(Organisation, Organisation.id == Dpia.lead_organisation_id)
                        .join(SearchIndexRow, SearchIndexRow.document_id == Dpia.id)
                        .where(Dpia.id.in_(ids))
                    )
                ).all()
            }
        results = []
        for document_id, marked in found:
            row = rows.get(document_id)
            if row is None:
                continue  # deleted meanwhile
            results.append(
                SearchResult(
                    document_id=row.id,
                    title=row.title,
                    kind=DocumentKind(row.kind),
                    status=DpiaStatus(row.status),
                    template_id=row.template_id,
                    template_title=_template_title(row.template_id),
                    lead_organisation=row.name,
                    project_id=row.project_id,
                    next_review=row.next_review,
                    passage=passage(marked),
                )
            )
        return results

    async def choices(self, user: CurrentUser) -> tuple[list[str], list[tuple[int, str]]]:
        """The templates and lead organisations of the documents the person takes part in
        (what the filters offer)."""
        sql = text(
            """
            SELECT DISTINCT d.template_id, o.id, o.name FROM dpias d
            JOIN organisations o ON o.id = d.lead_organisation_id
            WHERE EXISTS (SELECT 1 FROM participants p
                          WHERE p.dpia_id = d.id AND p.user_id = :user_id)
            """
        )
        async with self._sessions() as session:
            rows = (await session.execute(sql, {"user_id": user.id})).all()
        templates = sorted({row[0] for row in rows})
        organisations = sorted({(row[1], row[2]) for row in rows}, key=lambda o: o[1])
        return templates, organisations


# For the rest of the transaction (PostgreSQL): plans for these words, and table and index
# scans off (the window) or on again (ranking and passages), in one round trip.
_SETTINGS = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_seqscan', :scan, true), set_config('enable_indexscan', :scan, true)"
)

# The person takes part in the document: checked inside the ranked query, before the limit.
_VISIBLE = "EXISTS (SELECT 1 FROM participants p WHERE p.dpia_id = d.id AND p.user_id = :user_id)"


def _filters(query: SearchQuery, today: date, params: dict[str, Any], *, postgres: bool) -> str:
    """SQL conditions for the filters (values bound, never spliced). SQLite holds dates
    as ISO text (SQLAlchemy's ``Date``), PostgreSQL as dates."""
    parts = []
    if query.status:
        parts.append("d.status = :status")
        params["status"] = query.status
    if query.template:
        parts.append("d.template_id = :template")
        params["template"] = query.template
    if query.organisation_id is not None:
        parts.append("d.lead_organisation_id = :organisation_id")
        params["organisation_id"] = query.organisation_id
    if query.review is not None:
        since, before = query.review_window(today)
        if since is None and before is None:
            parts.append("s.next_review IS NULL")
        if since is not None:
            parts.append("s.next_review >= :review_since")
            params["review_since"] = since if postgres else since.isoformat()
        if before is not None:
            parts.append("s.next_review < :review_before")
            params["review_before"] = before if postgres else before.isoformat()
    return "".join(f" AND {part}" for part in parts)


def _best(body: str | None, comments: str | None, title: str | None) -> str:
    """The passage to show: from the answers if they match, else the comments, else the
    title (the words may match only there)."""
    for marked in (body, comments):
        if has_hit(marked):
            return marked or ""
    if has_hit(title):
        return title or ""
    return body or ""


def _template_title(template_id: str) -> str:
    try:
        return load_template(template_id).title
    except Exception:
        return template_id
