"""`opendpia demo`'s project (issue 16): a pan-London data collaboration through the seven
steps, seeded through the same services and use cases the app uses.

Camden leads it, the NHS trust is a joint controller and IGfL's steering group (a reviewing
body) is invited to it. Steps 1-3 are written, the DPIA is drafted from them and the ISA
from the DPIA (``Projects.start_step``, as the project page's "Start this step" does), the
demo's people hold signatory roles, and the trust's DPO has signed the DPIA for the trust
(``PartySignOffs.sign``): Camden's DPO (dpo@camden.example) can sign it for Camden.
Seeded once: a demo that lacks the project (one made before issue 16) gains it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.content import Content
from server.domain.dpias import PartyRole
from server.domain.projects import DocumentKind
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.services.accounts import AccountService, CurrentUser
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.audit import AuditTrail
from server.services.demo import DemoPerson, write_demo_content
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.parties import PartySignOffService
from server.services.passwords import PasswordResets
from server.services.projects import ProjectService
from server.services.signoffs import SignOffService
from server.services.sources import SourceService
from server.storage.models import Organisation, Project
from server.storage.updates import SqlUpdateStore
from server.usecases.parties import PartySignOffs
from server.usecases.projects import Projects

PROJECT_TITLE = "Pan-London hospital discharge: knowing who needs care at home"
REVIEWING_BODY = ("IGFL", "IGfL steering group")
# The project's people who are not in the first demo DPIA (password: DEMO_PASSWORD).
PROJECT_PEOPLE = [
    DemoPerson("steering@igfl.example", "Ruth Mensah", "IGFL", Role.COMMENTER),
    DemoPerson("siro@nlft.example", "Dr Helen Marsh", "NLFT", Role.COMMENTER),
]
# Who signs for their organisation, and in what capacities (the admin page's "Signatory roles").
SIGNATORIES = {
    "dpo@camden.example": ("dpo",),
    "ig.lead@camden.example": ("siro",),
    "ig@nlft.example": ("dpo",),
    "siro@nlft.example": ("siro", "caldicott_guardian"),
}
# Who takes part in the project, in which role (the lead, Priya Shah, owns it).
TAKING_PART = {
    "data.officer@camden.example": Role.EDITOR,
    "dpo@camden.example": Role.DPO,
    "ig@nlft.example": Role.EDITOR,
    "siro@nlft.example": Role.COMMENTER,
}
SIGNED_ALREADY = "ig@nlft.example"  # the trust's DPO signed the DPIA for the trust


@dataclass(frozen=True, slots=True)
class DemoProject:
    project_id: str
    dpia_id: str
    isa_id: str


async def seed_demo_project(
    sessions: async_sessionmaker[AsyncSession],
    store: SqlUpdateStore,
    signoffs: SignOffService,
    *,
    base_url: str = "http://127.0.0.1:8000",
    mail_from: str = "OpenDPIA <opendpia@localhost>",
    password: str | None = None,
) -> DemoProject | None:
    """Seed the project once, on a seeded demo (``services.demo.seed_demo``); None if it
    exists already. ``password``: the new people's (the demo's)."""
    async with sessions() as session:
        if await session.scalar(select(Project.id).where(Project.title == PROJECT_TITLE)):
            return None
    accounts = AccountService(sessions)
    admin_audit = AdminAuditTrail(sessions)
    administration = Administration(
        sessions, PasswordResets(sessions, base_url=base_url, mail_from=mail_from), admin_audit
    )
    actor = Actor.command_line("demo")
    await _people(sessions, accounts, administration, actor, password)

    dpias = DpiaService(sessions, store)
    audit = AuditTrail(sessions)
    history = HistoryService(sessions, store, audit)
    service = ProjectService(sessions, dpias)
    # No document is open in a room while the demo is seeded: everything is committed.
    rooms = RoomManager(store, GroupCommitter(store), grace_seconds=0, compact_every=50)
    projects = Projects(service, history, SourceService(sessions, dpias, history, audit), rooms)
    parties = PartySignOffService(
        sessions,
        dpias=dpias,
        projects=service,
        history=history,
        signoffs=signoffs,
        audit=audit,
        store=store,
        base_url=base_url,
        mail_from=mail_from,
    )
    camden, trust, igfl = [
        await accounts.organisation_id(code) for code in ("CAM", "NLFT", REVIEWING_BODY[0])
    ]
    lead = await _user(accounts, "ig.lead@camden.example")
    project_id = await service.create(lead, PROJECT_TITLE, camden)
    await service.add_party(
        lead, project_id, PartyRole.JOINT_CONTROLLER.value, organisation_id=trust
    )
    for email, role in TAKING_PART.items():
        await service.add_person(lead, project_id, email, role.value)
    for kind, content in STEPS.items():
        if kind is not DocumentKind.IDEA:
            await projects.start_step(lead, project_id, kind)
        view = await service.view(lead, project_id)
        document = view.current(kind)
        assert document is not None
        await write_demo_content(store, document.id, kind.template_id, content, lead.id)
    dpia_id = await projects.start_step(lead, project_id, DocumentKind.DPIA)
    await write_demo_content(store, dpia_id, DocumentKind.DPIA.template_id, DPIA_OWN_WORK, lead.id)
    isa_id = await projects.start_step(lead, project_id, DocumentKind.ISA)
    await parties.invite_reviewing_body(lead, project_id, igfl)
    signer = await _user(accounts, SIGNED_ALREADY)
    await PartySignOffs(parties, rooms).sign(
        signer, dpia_id, decision="approve", organisation_id=trust, capacity="dpo"
    )
    return DemoProject(project_id, dpia_id, isa_id)


async def _people(
    sessions: async_sessionmaker[AsyncSession],
    accounts: AccountService,
    administration: Administration,
    actor: Actor,
    password: str | None,
) -> None:
    """The reviewing body, the project's new people and everyone's signatory roles."""
    code, name = REVIEWING_BODY
    async with sessions() as session:
        exists = await session.scalar(select(Organisation.id).where(Organisation.code == code))
    if exists is None:
        await accounts.create_organisation(code, name)
    await administration.set_reviewing_body(actor, code, True)
    for person in PROJECT_PEOPLE:
        if await accounts.user_by_email(person.email) is None:
            await accounts.create_user(person.email, person.name, password, person.organisation)
    for email, roles in SIGNATORIES.items():
        user = await _user(accounts, email)
        for organisation_id in user.organisation_ids:
            await administration.set_signatory_roles(actor, organisation_id, user.id, roles)


async def _user(accounts: AccountService, email: str) -> CurrentUser:
    user = await accounts.user_by_email(email)
    assert user is not None, email
    return user


def _text(*paragraphs: str) -> list[dict[str, Any]]:
    return [{"type": "paragraph", "content": [{"text": p}]} for p in paragraphs]


def _row(ref: str, **values: Any) -> dict[str, Any]:
    return {"id": f"demo-{ref.lower()}", "ref": ref, **values}


STEPS: dict[DocumentKind, Content] = {
    DocumentKind.IDEA: {
        "outcome": {
            "outcome": _text(
                "Fewer people wait in hospital for care at home once they are well enough "
                "to leave, across the London boroughs the trust serves."
            ),
            "people": _text(
                "Older residents leaving North London hospitals, and the families who "
                "care for them."
            ),
        },
        "action": {
            "actors": _text(
                "Hospital discharge teams and borough adult social care duty teams plan "
                "care together before the day a patient is fit to leave."
            ),
            "decision": _text(
                "Which patients need a care assessment, and which borough's team does it."
            ),
        },
        "insight": {
            "insight": _text(
                "To plan care at home before a patient is medically fit, knowing whether "
                "they already receive care and which borough supports them."
            ),
        },
        "datasets": {
            "datasets": [
                _row(
                    "D1",
                    name="Patients expected to leave hospital within 72 hours",
                    holder="North London NHS Foundation Trust",
                    personal=True,
                    purpose="Who is about to leave and may need care.",
                ),
                _row(
                    "D2",
                    name="Adult social care open cases",
                    holder="London Borough of Camden",
                    personal=True,
                    purpose="Who already has a care package or a social worker.",
                ),
            ],
            "partners": _text(
                "Camden leads for the boroughs; the trust is a joint controller; IGfL's "
                "steering group reviews the agreement for the other boroughs to adopt."
            ),
        },
    },
    DocumentKind.PRESCREENING: {
        "idea": {
            "summary": _text(
                "A daily list of patients expected to leave hospital, matched with the "
                "boroughs' adult social care records, so that care at home is ready on time."
            ),
            "lead_contact": "Priya Shah, Information Governance Lead, Camden",
        },
        "legal": {
            "gateways": ["uk-gdpr-6-1-e", "care-act-2014-s6-s7", "hsca-2012-s251b"],
            "special_category": True,
        },
        "ethics": {
            "communicating_purpose": _text(
                "The trust's and the boroughs' privacy notices name hospital discharge "
                "planning; ward staff hand patients a leaflet on admission."
            ),
            "openness": _text("The agreement and this assessment are published by IGfL."),
            "minimising_negative_impact": _text(
                "Only patients expected to leave within 72 hours are listed, and only the "
                "fields a duty team needs to plan care."
            ),
            "engaging_with_people": _text(
                "Camden's carers' forum and the trust's patient panel will be asked about "
                "the leaflet and the list before the first exchange."
            ),
        },
        "risks": {
            "subject_reaction": _text(
                "Patients expect the hospital and their council to talk before they go "
                "home; few would expect a list to reach a borough they do not live in."
            ),
            "reaction": "accept",
        },
        "screening": {
            "triggers": ["special-category", "matching-combining", "vulnerable-subjects"],
            "dpia_needed": "required",
            "rationale": _text(
                "Health data about vulnerable adults, matched across organisations: a DPIA "
                "is required."
            ),
        },
        "decision": {"decision": "proceed", "date": "2026-10-05"},
    },
    DocumentKind.FEASIBILITY: {
        "partners": {
            "partners": [
                _row(
                    "P1",
                    organisation="London Borough of Camden",
                    role="controller",
                    contact="ig.lead@camden.example",
                ),
                _row(
                    "P2",
                    organisation="North London NHS Foundation Trust",
                    role="joint_controller",
                    contact="ig@nlft.example",
                ),
            ],
        },
        "data": {
            "datasets": [
                _row(
                    "D1",
                    dataset="Expected discharges (72 hours)",
                    held_by="North London NHS Foundation Trust",
                    available="yes",
                    personal=True,
                    special_category=True,
                    deidentify="no",
                    fields="NHS number, name, date of birth, home address, ward, expected "
                    "discharge date, mobility and care needs noted by the ward",
                ),
                _row(
                    "D2",
                    dataset="Adult social care open cases",
                    held_by="London Borough of Camden",
                    available="yes",
                    personal=True,
                    special_category=True,
                    deidentify="no",
                    fields="NHS number, care package in place, allocated social worker",
                ),
            ],
        },
        "sharing": {
            "method": "secure-file-transfer",
            "frequency": "daily",
            "details": _text(
                "The trust places the list on its secure transfer service at 7am; each "
                "borough collects only its residents' rows."
            ),
        },
        "decision": {
            "decision": "go-with-conditions",
            "conditions": _text("The DPIA is approved by both controllers before any data flows."),
            "decided_by": "Camden and the trust's IG leads",
            "date": "2026-10-19",
        },
    },
}

# What the DPIA's authors add to the draft before the ISA is drafted from it.
DPIA_OWN_WORK: Content = {
    "processing": {
        "nature": _text(
            "A daily file over the trust's secure file transfer service; the boroughs "
            "match it with their case records by NHS number inside their social care system."
        ),
    },
    "necessity": {
        "achieves_purpose": _text(
            "Duty teams see who is coming home days earlier, so assessments start before "
            "the patient is fit to leave."
        ),
        "rights": _text(
            "Requests go to the organisation that holds the record; each tells the other "
            "within five working days."
        ),
    },
    "measures": {
        "plan": [
            _row(
                "M1",
                title="Rows for each borough's residents only",
                description="The transfer service gives each borough the rows whose home "
                "address is in that borough.",
                type="technical",
                status="implemented",
            ),
            _row(
                "M2",
                title="Named duty team users",
                description="Only named members of the duty team can open the file; access "
                "is reviewed monthly.",
                type="organisational",
                status="planned",
            ),
        ],
    },
    "review": {"next_review": "2027-10-01"},
}
