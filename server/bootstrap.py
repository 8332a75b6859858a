"""The composition root: the one place that names concrete adapters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from server.domain.access import TokenSigner
from server.domain.bus import Bus, LocalBus
from server.domain.changes import ChangeEvent
from server.domain.replies import ReplyKeys
from server.domain.shape import Limits
from server.mail.sink import start_sink
from server.mail.smtp import SmtpTransport
from server.realtime.changes import ChangeRecorder
from server.realtime.committer import GroupCommitter
from server.realtime.editing import DocumentEditing
from server.realtime.rooms import RoomManager
from server.services.accounts import AccountService, password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.administration import Administration
from server.services.adoption import AdoptionService
from server.services.audit import AuditTrail
from server.services.collaboration import CollaborationAccess
from server.services.dashboard import Dashboard
from server.services.dpias import DpiaService
from server.services.erasure import ErasureService
from server.services.exports import ExportService
from server.services.health import Health
from server.services.history import HistoryService
from server.services.inbound import InboundStore
from server.services.indexing import SearchIndexer
from server.services.notifications import NotificationService
from server.services.oidc import OpenIdClient
from server.services.outbox import OutboxWorker
from server.services.parties import PartySignOffService
from server.services.passwords import PasswordResets
from server.services.project_exports import ProjectExportService
from server.services.projects import ProjectService
from server.services.retention import RetentionService
from server.services.reviews import ReviewService
from server.services.risk_decisions import RiskDecisions
from server.services.ropa import RopaService
from server.services.search import SearchIndex, SearchService
from server.services.signin import SignInDirectory
from server.services.signoffs import SignOffService
from server.services.sources import SourceService
from server.services.subject_access import SubjectAccessService
from server.services.workflow import WorkflowService
from server.settings import Settings
from server.storage.database import create_engine, migrate, schema_is_current
from server.storage.updates import SqlUpdateStore
from server.usecases import UseCases
from server.usecases.administration import Administer
from server.usecases.comments import Comments
from server.usecases.history import History
from server.usecases.inbound import InboundMail
from server.usecases.participants import Participants
from server.usecases.parties import PartySignOffs
from server.usecases.project_people import ProjectPeople
from server.usecases.projects import Projects
from server.usecases.protection import DataProtection, RetentionKeeper
from server.usecases.reviews import Reviews
from server.usecases.risk_proposals import RiskProposals
from server.usecases.signoffs import SignOffs
from server.usecases.templates import TemplateMoves
from server.usecases.workflow import Workflow
from server.web.app import make_app
from server.web.errors import close_code_for
from server.web.runtime import Runtime
from server.web.signin import CALLBACK_PATH

log = logging.getLogger("opendpia")
SHUTDOWN_FLUSH_SECONDS = 30.0
# Beyond this, documents still being compacted at shutdown keep their tail (they load as
# before: the snapshot, then the tail applied), so that a restart is not held up for long.
SHUTDOWN_COMPACT_SECONDS = 5.0


def mail_transport(settings: Settings) -> SmtpTransport:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return SmtpTransport(f"smtp://127.0.0.1:{settings.dev_smtp_port}")


def notification_service(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    worker: OutboxWorker | None,
    announce: Bus | None = None,
    *,
    on_queued: Callable[[], None] | None = None,
    announce_to: Callable[[Iterable[int]], None] | None = None,
) -> NotificationService:
    """``on_queued`` and ``announce_to`` replace the worker's wake-up and the bus's
    announcement (the email bridge's own process sends both to ``serve``)."""
    if on_queued is None:
        on_queued = worker.wake if worker is not None else (lambda: None)
    if announce_to is None and announce is not None:
        announce_to = announce.announce
    return NotificationService(
        sessions,
        base_url=settings.base_url,
        mail_from=settings.mail_from,
        secret_key=settings.secret_key,
        on_queued=on_queued,
        reply_keys=ReplyKeys(
            settings.secret_key,
            [k.strip() for k in settings.reply_key_ids.split(",") if k.strip()],
            settings.reply_domain,
        ),
        link_days=settings.reply_days,
        announce=announce_to,
    )


def bus(settings: Settings) -> Bus:
    """Redis when several processes share the database; otherwise in-process."""
    if settings.redis_url:
        # Imported only here: redis-py is about 7 MB of memory the embedded default never uses.
        from server.storage.redisbus import RedisBus

        return RedisBus(
            settings.redis_url, prefix=settings.redis_prefix, maxlen=settings.bus_stream_length
        )
    return LocalBus()


def outbox_worker(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> OutboxWorker:
    return OutboxWorker(
        sessions,
        mail_transport(settings),
        retry_base=timedelta(seconds=settings.mail_retry_seconds),
        give_up=timedelta(hours=settings.mail_give_up_hours),
        lease=timedelta(seconds=settings.mail_lease_seconds),
    )


async def start_dev_mailbox(settings: Settings, engine: AsyncEngine) -> asyncio.Server | None:
    """The development SMTP sink, when mail has nowhere else to go."""
    if not settings.uses_dev_mailbox:
        return None
    try:
        return await start_sink(engine, "127.0.0.1", settings.dev_smtp_port)
    except OSError as error:
        log.error(
            "the development mailbox cannot listen on 127.0.0.1:%d (%s); mail will wait",
            settings.dev_smtp_port,
            error,
        )
        return None


# A long-running service started with the core (e.g. the email bridge, composed by the CLI):
# given the runtime, a coroutine function that sets its ``started`` event and runs until
# cancelled.
Service = Callable[[Runtime], Callable[[asyncio.Event], Coroutine[Any, Any, None]]]


@asynccontextmanager
async def open_runtime(
    settings: Settings, services: Sequence[Service] = (), *, web: bool = True
) -> AsyncIterator[Runtime]:
    """Open the database, rooms, committer and notifications (and, embedded, the mail worker
    and the development mailbox), start ``services``, and flush everything on the way out."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    if settings.migrate_on_start and not await schema_is_current(engine):
        await asyncio.to_thread(migrate, settings.database_url)
    shared = bool(settings.redis_url)  # several processes write the same documents
    store = SqlUpdateStore(engine, assign_seq=shared)
    await store.open()  # before the first client, who would otherwise wait for it
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    indexer = SearchIndexer(
        SearchIndex(sessions, store),
        delay_seconds=settings.search_index_delay_seconds,
        sweep_seconds=settings.search_sweep_seconds,
    )
    committer = GroupCommitter(
        store, window_seconds=settings.commit_window_ms / 1000, on_committed=indexer.notify
    )
    worker = outbox_worker(settings, sessions) if web and settings.worker_in_process else None
    the_bus = bus(settings)
    notifications = notification_service(settings, sessions, worker, the_bus)
    hasher = password_hasher(settings.password_hashing)
    accounts = AccountService(sessions, hasher)
    admin_audit = AdminAuditTrail(sessions)
    dpias = DpiaService(sessions, store, on_change=admin_audit.append)
    await dpias.templates.preload()  # organisations' published templates (and as used)
    audit = AuditTrail(sessions)
    history = HistoryService(sessions, store, audit)
    signoffs = SignOffService(sessions, dpias, history, audit, notifications)
    workflow = WorkflowService(sessions, dpias, history, signoffs, audit, notifications)
    sources = SourceService(sessions, dpias, history, audit)
    projects = ProjectService(sessions, dpias)
    exports = ExportService(sessions, dpias, history, signoffs, audit)

    async def record_changes(events: Sequence[ChangeEvent]) -> None:
        await notifications.record_changes(events)
        try:
            await signoffs.mark_stale(events)
        except Exception:
            # Not retried with the batch (that would notify twice): staleness is also
            # read against the content whenever sign-offs are shown or gates checked.
            log.exception("could not record stale sign-offs for %d events", len(events))
        try:
            await sources.on_changes(events)
        except Exception:
            # Also checked whenever the drafted document's sources or editor are shown.
            log.exception("could not check drafted sources for %d events", len(events))

    recorder = ChangeRecorder(record_changes)
    access = CollaborationAccess(TokenSigner(settings.secret_key), accounts, dpias)
    rooms = RoomManager(
        store,
        committer,
        grace_seconds=settings.room_grace_seconds,
        compact_every=settings.compact_every,
        on_change=recorder.submit,
        quiet_seconds=settings.change_quiet_seconds,
        read_only=workflow.lock_reason,
        bus=the_bus if shared else None,
        limits=Limits(settings.max_field_bytes, settings.max_document_bytes),
        recheck=access.recheck,
        close_code=close_code_for,
        recheck_seconds=settings.access_recheck_seconds,
        awareness_tick_seconds=settings.awareness_tick_ms / 1000,
    )
    editing = DocumentEditing(rooms)
    retention = RetentionService(
        sessions, audit, settings.default_retention_months, on_change=admin_audit.append
    )
    protection = DataProtection(
        dpias,
        retention,
        ErasureService(sessions, store, audit, admin_audit, settings.secret_key),
        SubjectAccessService(sessions, store),
        rooms,
    )
    inbound = InboundStore(sessions, notifications.mail.reply_keys)
    passwords = PasswordResets(
        sessions,
        base_url=settings.base_url,
        mail_from=settings.mail_from,
        on_queued=worker.wake if worker is not None else (lambda: None),
        hasher=hasher,
    )
    signin = SignInDirectory(sessions, on_change=admin_audit.append)
    administration = Administration(
        sessions,
        passwords,
        admin_audit,
        signs_in_elsewhere=signin.signs_in_elsewhere,
        hasher=hasher,
    )
    parties = PartySignOffService(
        sessions,
        dpias=dpias,
        projects=projects,
        history=history,
        signoffs=signoffs,
        audit=audit,
        store=store,
        base_url=settings.base_url,
        mail_from=settings.mail_from,
        on_queued=worker.wake if worker is not None else (lambda: None),
    )
    reviews = ReviewService(
        sessions,
        dpias,
        history,
        audit,
        notifications,
        offsets=settings.review_offsets,
        clock=settings.clock,
        base_url=settings.base_url,
        mail_from=settings.mail_from,
        on_queued=worker.wake if worker is not None else (lambda: None),
    )
    adoption = AdoptionService(
        sessions, dpias=dpias, projects=projects, history=history, store=store
    )
    runtime = Runtime(
        settings=settings,
        access=access,
        rooms=rooms,
        committer=committer,
        accounts=accounts,
        dpias=dpias,
        projects=projects,
        dashboard=Dashboard(sessions, projects, reviews, clock=settings.clock),
        search=SearchService(sessions),
        indexer=indexer,
        editing=editing,
        sessions=sessions,
        notifications=notifications,
        inbound=inbound,
        audit=audit,
        history=history,
        signoffs=signoffs,
        workflow=workflow,
        exports=exports,
        project_exports=ProjectExportService(sessions, projects, dpias, exports, audit),
        health=Health(sessions, the_bus),
        passwords=passwords,
        administration=administration,
        parties=parties,
        adoption=adoption,
        reviews=reviews,
        signin=signin,
        ropa=RopaService(sessions, history, admin_audit, settings.base_url),
        oidc=OpenIdClient(
            settings.base_url.rstrip("/") + CALLBACK_PATH, timeout=settings.oidc_timeout_seconds
        ),
        usecases=UseCases(
            participants=Participants(dpias, notifications, rooms),
            comments=Comments(dpias, editing, notifications),
            history=History(history, editing, audit),
            workflow=Workflow(workflow, dpias, rooms),
            signoffs=SignOffs(signoffs, rooms),
            inbound=InboundMail(inbound, dpias),
            administer=Administer(administration, dpias, rooms),
            protection=protection,
            projects=Projects(projects, history, sources, rooms),
            parties=PartySignOffs(parties, rooms),
            project_people=ProjectPeople(projects, notifications, rooms),
            reviews=Reviews(reviews, dpias, rooms),
            templates=TemplateMoves(dpias, history, rooms, audit),
            risk_proposals=RiskProposals(history, rooms, RiskDecisions(sessions, audit)),
        ),
    )
    mailbox = await start_dev_mailbox(settings, engine) if web else None
    try:
        async with asyncio.TaskGroup() as tasks:
            started = [asyncio.Event() for _ in range(5)]
            running = [
                tasks.create_task(indexer.run(started[4])),
                tasks.create_task(committer.run(started[0])),
                tasks.create_task(rooms.run(started[1])),
                tasks.create_task(recorder.run(started[2])),
                tasks.create_task(the_bus.run(started[3], rooms, notifications.wake)),
            ]
            if web:
                started.append(asyncio.Event())
                keeper = RetentionKeeper(protection, settings.retention_check_seconds)
                running.append(tasks.create_task(keeper.run(started[-1])))
                started.append(asyncio.Event())
                running.append(
                    tasks.create_task(reviews.run(started[-1], settings.review_check_seconds))
                )
            if worker is not None:
                started += [asyncio.Event(), asyncio.Event()]
                running.append(tasks.create_task(worker.run(started[-2])))
                running.append(tasks.create_task(notifications.digests.run(started[-1])))
            for service in services:
                started.append(asyncio.Event())
                running.append(tasks.create_task(service(runtime)(started[-1])))
            for event in started:
                await event.wait()
            try:
                yield runtime
            finally:
                try:
                    async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                        await rooms.flush_all()
                        await committer.idle()
                except TimeoutError:
                    log.error("shutdown: some changes could not be committed in time")
                else:
                    # The documents open now are the ones people reconnect to after a
                    # restart: compacted, each is answered from one snapshot (decision 158).
                    try:
                        async with asyncio.timeout(SHUTDOWN_COMPACT_SECONDS):
                            rooms.compact_loaded()
                            await committer.idle()
                    except TimeoutError:
                        log.info("shutdown: some documents were left with their log tail")
                rooms.close_trackers()
                for task in running:
                    task.cancel()
    finally:
        if mailbox is not None:
            mailbox.close()
            await mailbox.wait_closed()
        await the_bus.close()
        await store.close()
        await engine.dispose()


def create_app(settings: Settings, services: Sequence[Service] = ()) -> Starlette:
    return make_app(lambda: open_runtime(settings, services), settings)
