"""`opendpia demo`: three organisations, a few people, one DPIA part-written, and the DPO's
sign-off of its first risk (so that a newcomer's export shows what a sign-off records).

The third organisation signs its people in through its own OpenID provider: `make run`
starts one on loopback (tests/node/oidc-provider.mjs, with the accounts of
tests/node/demo-accounts.json), so single sign-on works out of the box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Array, Doc, Map, XmlFragment
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.content import Content, write_content
from server.domain.documents import UpdateRecord
from server.domain.templates import append_paragraphs, load_template
from server.services.accounts import AccountService, CurrentUser
from server.services.dpias import DpiaService
from server.services.signin import SignInDirectory
from server.services.signoffs import SignOffService
from server.storage.models import Organisation, User
from server.storage.updates import SqlUpdateStore

DEMO_PASSWORD = "demo-password-2026"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    organisation: str
    role: Role
    admin: bool = False  # administers the organisation (reads /dev/mail in development)
    provider_login: str = ""  # signs in at the demo provider with this login, no password
    deployment_admin: bool = False  # manages every organisation at /admin/organisations


PEOPLE = [
    DemoPerson(
        "ig.lead@camden.example",
        "Priya Shah",
        "CAM",
        Role.OWNER,
        admin=True,
        deployment_admin=True,
    ),
    DemoPerson("data.officer@camden.example", "Tom Evans", "CAM", Role.EDITOR),
    DemoPerson("ig@nlft.example", "Sam Whitfield", "NLFT", Role.EDITOR),
    DemoPerson("dpo@camden.example", "Grace Okafor", "CAM", Role.DPO),
    DemoPerson("analyst@nlft.example", "Lee Chen", "NLFT", Role.VIEWER),
    DemoPerson(
        "kim@islington.example",
        "Kim Adeyemi",
        "ISL",
        Role.EDITOR,
        admin=True,  # through the provider's administrator group, at every sign-in
        provider_login="kim",
    ),
]
ORGANISATIONS = [
    ("CAM", "London Borough of Camden"),
    ("NLFT", "North London NHS Foundation Trust"),
    ("ISL", "London Borough of Islington"),
]
# The demo's single sign-on: Islington's provider (its accounts: tests/node/demo-accounts.json;
# "jo" has no OpenDPIA account until the first sign-in creates one).
DEMO_IDP = "http://127.0.0.1:8090"
SSO = {
    "code": "ISL",
    "domains": "islington.example",
    "client_id": "opendpia-demo",
    "client_secret": "opendpia-demo-client-secret",
    "tenant": "demo-islington-tenant",
    "admin_group": "islington-opendpia-admins",
}
JUST_IN_TIME = DemoPerson(
    "jo.bloggs@islington.example", "Jo Bloggs", "ISL", Role.VIEWER, False, "jo"
)


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession],
    store: SqlUpdateStore,
    signoffs: SignOffService,
    issuer: str = DEMO_IDP,
) -> str | None:
    """Create the demo once; the DPIA's id, or None if the demo exists already.
    ``signoffs`` signs as the demo's DPO, through the rules and the audit chain a sign-off
    in the app goes through."""
    async with sessions() as session:
        if await session.scalar(select(Organisation.id).where(Organisation.code == "CAM")):
            return None
    accounts = AccountService(sessions)
    dpias = DpiaService(sessions, store)
    for code, name in ORGANISATIONS:
        await accounts.create_organisation(code, name)
    await SignInDirectory(sessions).save(
        SSO["code"],
        actor="demo",
        channel="cli",
        issuer=issuer,
        client_id=SSO["client_id"],
        client_secret=SSO["client_secret"],
        domains=SSO["domains"],
        tenant=SSO["tenant"],
        jit=True,
        admin_group=SSO["admin_group"],
    )
    ids = {}
    for person in PEOPLE:
        ids[person.email] = await accounts.create_user(
            person.email,
            person.name,
            None if person.provider_login else DEMO_PASSWORD,
            person.organisation,
            admin=person.admin,
        )
    async with sessions.begin() as session:
        await session.execute(
            update(User)
            .where(User.email.in_([p.email for p in PEOPLE if p.deployment_admin]))
            .values(deployment_admin=True)
        )
    lead = PEOPLE[0]
    owner = CurrentUser(
        ids[lead.email], lead.email, lead.name, (await accounts.organisation_id("CAM"),)
    )
    dpia_id = await dpias.create(
        owner, "Sharing rough sleeping data between Camden and the NHS", owner.organisation_ids[0]
    )
    for person in PEOPLE[1:]:
        await dpias.invite(owner, dpia_id, person.email, person.role.value)
    # The trust's staff write the DPIA with Camden: the trust is a party to it too.
    trust = await accounts.organisation_id("NLFT")
    await dpias.add_party(owner, dpia_id, "joint_controller", organisation_id=trust)
    islington = await accounts.organisation_id("ISL")
    await dpias.add_party(owner, dpia_id, "joint_controller", organisation_id=islington)
    await dpias.invite(owner, dpia_id, "outreach@streetlink.example", "commenter", "Jo Martin")
    await write_demo_change(store, dpia_id, owner.id, _part_written)
    dpo = next(p for p in PEOPLE if p.role is Role.DPO)
    await signoffs.sign(
        CurrentUser(
            ids[dpo.email], dpo.email, dpo.name, (await accounts.organisation_id(dpo.organisation),)
        ),
        dpia_id,
        kind="item",
        target="risks.register:R1",
        decision="approve_with_conditions",
        conditions="Outreach staff see only that a person is known to the street-health "
        "team, never health details.",
    )
    return dpia_id


async def write_demo_content(
    store: SqlUpdateStore, dpia_id: str, template_id: str, content: Content, user_id: int
) -> None:
    """Write ``content`` (its fields only) into a demo document, as one change by the user."""
    template = load_template(template_id)
    await write_demo_change(
        store, dpia_id, user_id, lambda doc: write_content(doc, template, content)
    )


async def write_demo_change(
    store: SqlUpdateStore, dpia_id: str, user_id: int, edit: Callable[[Doc[Any]], None]
) -> None:
    """One change to a demo document, made by ``edit`` and stored as the user's."""
    stored = await store.load(dpia_id)
    assert stored is not None
    doc = stored.to_doc()
    before = doc.get_state()
    with doc.transaction():
        edit(doc)
    await store.append(
        [
            UpdateRecord(
                dpia_id,
                stored.last_seq + 1,
                doc.get_update(before),
                f"user:{user_id}",
                "browser",
                "demo",
                datetime.now(UTC),
            )
        ]
    )


def _part_written(doc: Doc[Any]) -> None:
    values = doc.get("values", type=Map)
    values["screening.outcome"] = "required"
    values["screening.triggers"] = [
        "vulnerable-subjects",
        "matching-combining",
        "special-category",
    ]
    values["processing.children_vulnerable"] = True
    values["processing.novel_technology"] = False
    append_paragraphs(
        doc.get("field:screening.rationale", type=XmlFragment),
        [
            "The sharing matches records about people who sleep rough, who are vulnerable, "
            "and includes health data: a DPIA is required."
        ],
    )
    append_paragraphs(
        doc.get("field:need.aims", type=XmlFragment),
        [
            "Outcome sought: fewer people sleeping rough for a second night in Camden.",
            "Outreach workers and NHS street-health teams could act sooner if they knew "
            "who had been seen by the other service in the last week.",
        ],
    )
    risks = doc.get("table:risks.register", type=Array)
    risks.append(
        Map(
            {
                "id": "demo-risk-1",
                "ref": "R1",
                "title": "Health details seen by outreach staff who do not need them",
                "likelihood": "2",
                "severity": "3",
                "harm_type": "loss-of-confidentiality",
                "status": "open",
            }
        )
    )
