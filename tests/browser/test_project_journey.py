"""Issue 16's "done when": one project walked from its idea to a signed information sharing
agreement, in real browsers, by three organisations and a reviewing body.

Camden (lead, controller), the North London NHS trust and Islington (joint controllers) and
IGfL (a reviewing body). Accounts, organisations, who signs as what and the project's people
are seeded through the services (their own pages have their own tests); what the issue names
is done in the browser: two people of two organisations write the idea at once, the owner
starts the steps from the project page (the DPIA drafted from steps 1-3, the ISA from the
DPIA), an Islington officer with no account answers by email through the real SMTP bridge,
each party's DPO signs for their own party (and SIRO on the agreement, as uk-isa requires),
IGfL endorses, and a later DPIA change makes the ISA show "source changed" and its
signatures stale.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, password_hasher
from server.storage.database import create_engine
from server.storage.models import Membership, Organisation, Participant, User
from tests.browser.conftest import EDITOR_BUNDLE, _require, keep_screenshot, sign_in
from tests.support.bridge import deliver, reply_address
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, prepare

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

FAST = password_hasher("fast-for-tests")
CAMDEN, TRUST, ISLINGTON, IGFL = (
    "London Borough of Camden",
    "North London NHS Foundation Trust",
    "London Borough of Islington",
    "IGfL Steering Group",
)
PEOPLE = {  # key: (organisation code, name, signatory roles)
    "owner": ("CAM", "Olive Owner", ""),
    "cam_dpo": ("CAM", "Dora Camden", "dpo,siro"),
    "editor": ("NLFT", "Ed Trust", ""),
    "trust_dpo": ("NLFT", "Nia Trust", "dpo,siro"),
    "isl_dpo": ("ISL", "Ian Islington", "dpo,siro"),
    "reviewer": ("IGFL", "Rita Reviewer", ""),
}
PARTNER, PARTNER_NAME = "pat.partner@islington.example", "Pat Partner"
WAIT_MS = 30_000

IDEA_TEXT = ("Fewer older residents in cold homes.", "Fewer winter admissions.")
SCREEN_TEXT = "Letters to every household before the first visit."
DPIA_CHANGE = "Also fewer falls at home."


@dataclass
class Journey:
    base: str
    project_id: str
    emails: dict[str, str] = field(default_factory=dict)


def email_of(key: str) -> str:
    return f"{key.replace('_', '.')}@{PEOPLE[key][0].lower()}.example"


async def seed_accounts(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, FAST)
    try:
        for code, name in (("CAM", CAMDEN), ("NLFT", TRUST), ("ISL", ISLINGTON), ("IGFL", IGFL)):
            await accounts.create_organisation(code, name)
        for key, (code, name, _) in PEOPLE.items():
            await accounts.create_user(email_of(key), name, PASSWORD, code)
        async with sessions.begin() as session:
            # As a deployment administrator and each organisation's administrator record on
            # their admin pages (tested in tests/browser/test_administration.py).
            await session.execute(
                update(Organisation).where(Organisation.code == "IGFL").values(reviewing_body=True)
            )
            for key, (_, _, roles) in PEOPLE.items():
                if roles:
                    user_id = await session.scalar(
                        select(User.id).where(User.email == email_of(key))
                    )
                    await session.execute(
                        update(Membership)
                        .where(Membership.user_id == user_id)
                        .values(signatory_roles=roles)
                    )
    finally:
        await engine.dispose()


def start_project(live: LiveServer) -> str:
    """The owner's project at step 1, its parties and its people (by the project page's own
    use cases: a person added takes part in every document started later)."""
    runtime = live.runtime

    async def start() -> str:
        owner = await runtime.accounts.user_by_email(email_of("owner"))
        assert owner is not None
        project_id = await runtime.projects.create(
            owner, "Warmer homes for older residents", owner.organisation_ids[0]
        )
        codes = {code: id_ for id_, code, _ in await runtime.dpias.organisations()}
        people = runtime.usecases.project_people
        for code in ("NLFT", "ISL"):
            await people.add_party(
                owner, project_id, "joint_controller", organisation_id=codes[code]
            )
        await people.add_person(owner, project_id, email_of("editor"), "editor")
        for key in ("cam_dpo", "trust_dpo", "isl_dpo"):
            await people.add_person(owner, project_id, email_of(key), "commenter")
        await people.add_person(owner, project_id, PARTNER, "commenter", PARTNER_NAME)
        return project_id

    return live.call(start())


async def participant_id(live: LiveServer, document_id: str, email: str) -> int:
    """Whom a notification about ``document_id`` would be addressed to (storage: the reply
    address is what the partner's notification carries)."""

    engine = create_engine(live.settings.database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            found = await session.scalar(
                select(Participant.id).where(
                    Participant.dpia_id == document_id, Participant.email == email
                )
            )
    finally:
        await engine.dispose()
    assert found is not None, f"{email} takes no part in {document_id}"
    return found


@pytest.fixture
def journey_site(sqlite_url: str) -> Iterator[tuple[LiveServer, Journey]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    asyncio.run(seed_accounts(sqlite_url))
    with serving(make_settings(sqlite_url, change_quiet_seconds=0.2)) as live:
        project_id = start_project(live)
        yield live, Journey(f"http://127.0.0.1:{live.port}", project_id)


# -- what a person does and sees --------------------------------------------------------------


def editor_field(name: str) -> str:
    return f'[data-field="{name}"] .ProseMirror'


CONTAINS = """([selector, texts]) => {
    const node = document.querySelector(selector);
    return node !== null && texts.every((text) => node.innerText.includes(text));
}"""


async def open_field(page: Any, base: str, document_id: str, name: str) -> None:
    """The document's editor on the section of field ``name``, connected."""
    section = name.split(".", 1)[0]
    await page.goto(f"{base}/dpias/{document_id}#{section}")
    await page.locator(f'a.section-link[data-section="{section}"]').click()
    await page.wait_for_selector(editor_field(name))
    await page.wait_for_selector('#connection-state[data-state="connected"]')


async def type_into(page: Any, name: str, text: str) -> None:
    await page.locator(editor_field(name)).click()
    await page.keyboard.press("End")
    await page.keyboard.type(text, delay=10)
    await page.wait_for_function(CONTAINS, arg=[editor_field(name), [text]], timeout=WAIT_MS)
    await page.wait_for_selector('#save-state[data-state="saved"]', timeout=WAIT_MS)


async def start_step(page: Any, base: str, project_id: str, step: str) -> str:
    """Press "Start this step" for ``step`` on the project page; the new document's id."""
    await page.goto(f"{base}/projects/{project_id}")
    await page.get_by_role("button", name=re.compile(f"Start this step.*{step}")).click()
    await page.wait_for_url(re.compile(r"/dpias/[A-Z0-9-]+$"))
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    assert step in await page.inner_text("#project-context")
    return str(page.url.rsplit("/", 1)[1])


def signature(page: Any, document_id: str, party: str, capacity: str) -> Any:
    return page.locator(
        f'#party-signoffs-{document_id} tr[data-party="{party}"][data-capacity="{capacity}"]'
    )


async def sign(page: Any, base: str, project_id: str, document_id: str, as_: str) -> None:
    """Sign ``document_id`` on the project's sign-off page, for the party and role ``as_``
    ("<party> as <role>") that the person chooses."""
    await page.goto(f"{base}/projects/{project_id}/sign-off")
    await page.locator(f"#signing-as-{document_id}").select_option(label=as_)
    await page.locator(f"#decision-{document_id}").select_option("approve")
    await page.get_by_role("button", name=re.compile(f"^Sign {document_id} as")).click()
    await page.get_by_role("status").filter(has_text=f"Signed {document_id}").wait_for()


async def states(page: Any, document_id: str) -> dict[tuple[str, str], str]:
    """Every required signature's state as the page shows it: (party, capacity) -> state."""
    rows = page.locator(f"#party-signoffs-{document_id} tr.party-signature")
    found = {}
    for index in range(await rows.count()):
        row = rows.nth(index)
        key = (await row.get_attribute("data-party"), await row.get_attribute("data-capacity"))
        found[key] = (await row.locator("td").nth(2).inner_text()).strip()
    return found


async def test_a_project_goes_from_its_idea_to_a_signed_agreement_and_back_to_source_changed(
    journey_site: tuple[LiveServer, Journey], browser: Any
) -> None:
    live, journey = journey_site
    base, project_id = journey.base, journey.project_id

    # -- Step 1: Camden and the trust write the idea at the same time, each in a field. -------
    # Two people typing at one caret position interleave by design (the CRDT keeps both, and a
    # caret at the end of the text follows the other's words), so each writes their own field.
    olive = await sign_in(browser, base, email_of("owner"))
    ed = await sign_in(browser, base, email_of("editor"))
    idea_id = f"{project_id}-IDEA"
    fields = (editor_field("outcome.outcome"), editor_field("outcome.people"))
    for page in (olive, ed):
        await open_field(page, base, idea_id, "outcome.outcome")
    await olive.locator(fields[0]).click()
    await ed.locator(fields[1]).click()
    await asyncio.gather(
        olive.keyboard.type(IDEA_TEXT[0], delay=15),
        ed.keyboard.type(IDEA_TEXT[1], delay=15),
    )
    for page in (olive, ed):  # each sees the other's words appear
        for selector, text in zip(fields, IDEA_TEXT, strict=True):
            await page.wait_for_function(CONTAINS, arg=[selector, [text]], timeout=WAIT_MS)
    await olive.wait_for_selector(".collaboration-carets__label:has-text('Ed Trust')")
    await ed.wait_for_selector(".collaboration-carets__label:has-text('Olive Owner')")
    for page in (olive, ed):
        await page.wait_for_selector('#save-state[data-state="saved"]', timeout=WAIT_MS)
    await ed.context.close()

    # -- Steps 2 and 3, started from the project page. -----------------------------------------
    screening_id = await start_step(olive, base, project_id, "Review concept")
    await open_field(olive, base, screening_id, "ethics.communicating_purpose")
    await type_into(olive, "ethics.communicating_purpose", SCREEN_TEXT)
    await start_step(olive, base, project_id, "Assess feasibility")

    # -- Step 4: the DPIA, drafted from steps 1-3. ---------------------------------------------
    dpia_id = await start_step(olive, base, project_id, "Co-create DPIA")
    assert dpia_id.startswith("DPIA-CAM-")
    await open_field(olive, base, dpia_id, "need.aims")
    await olive.wait_for_function(
        CONTAINS, arg=[editor_field("need.aims"), list(IDEA_TEXT)], timeout=WAIT_MS
    )
    await open_field(olive, base, dpia_id, "necessity.transparency")
    await olive.wait_for_function(
        CONTAINS, arg=[editor_field("necessity.transparency"), [SCREEN_TEXT]], timeout=WAIT_MS
    )

    # Islington's officer has no account: they answer the DPIA's notification by email.
    partner = await participant_id(live, dpia_id, PARTNER)
    to = await reply_address(live.settings, partner, dpia_id, "need", "aims")
    message = EmailMessage()
    message["From"] = f"{PARTNER_NAME} <{PARTNER}>"
    message["To"] = to
    message["Subject"] = "Re: Warmer homes for older residents"
    message["Message-ID"] = "<journey@islington.example>"
    message.set_content("Islington's home visits team can share its referrals weekly.\n")
    assert (await deliver(live.settings.bridge_port, message.as_bytes(), [to])).data == 250
    await open_field(olive, base, dpia_id, "need.aims")
    reply = olive.locator("#comment-list li.comment", has_text="home visits team can share")
    await reply.wait_for(timeout=WAIT_MS)
    assert await reply.locator(".comment-author").inner_text() == PARTNER_NAME
    assert await reply.locator(".channel-badge").inner_text() == "Email"

    # -- Step 5: the ISA, drafted from the DPIA. ------------------------------------------------
    isa_id = await start_step(olive, base, project_id, "Complete ISA")
    await open_field(olive, base, isa_id, "purpose.purpose")
    await olive.wait_for_function(
        CONTAINS, arg=[editor_field("purpose.purpose"), list(IDEA_TEXT)], timeout=WAIT_MS
    )
    await open_field(olive, base, isa_id, "rights.transparency")
    await olive.wait_for_function(
        CONTAINS, arg=[editor_field("rights.transparency"), [SCREEN_TEXT]], timeout=WAIT_MS
    )

    # The owner invites IGfL as the reviewing body, from the sign-off page.
    await olive.goto(f"{base}/projects/{project_id}/sign-off")
    await olive.locator("#reviewing-body").select_option(label=IGFL)
    await olive.get_by_role("button", name="Invite as reviewing body").click()
    await olive.get_by_role("status").filter(has_text="Reviewing body invited").wait_for()
    assert await olive.locator("#project-approved").inner_text() == "not yet approved"

    # -- Each party's DPO signs for their own party only. --------------------------------------
    parties = (("cam_dpo", CAMDEN), ("trust_dpo", TRUST), ("isl_dpo", ISLINGTON))
    for number, (key, party) in enumerate(parties):
        signer = await sign_in(browser, base, email_of(key))
        await signer.goto(f"{base}/projects/{project_id}/sign-off")
        offered = await signer.locator(f"#signing-as-{isa_id} option").all_inner_texts()
        assert offered == [  # nobody can sign for another party
            f"{party} as Data protection officer",
            f"{party} as Senior information risk owner",
        ], offered
        await sign(signer, base, project_id, dpia_id, f"{party} as Data protection officer")
        await sign(signer, base, project_id, isa_id, f"{party} as Data protection officer")
        await sign(signer, base, project_id, isa_id, f"{party} as Senior information risk owner")
        dpia_states, isa_states = await states(signer, dpia_id), await states(signer, isa_id)
        for index, (_, other) in enumerate(parties):
            # Signed for this party and the ones before; the others still owe theirs.
            expected = "Signed" if index <= number else "Outstanding"
            assert dpia_states[(other, "dpo")] == expected, (party, other, dpia_states)
            assert isa_states[(other, "dpo")] == expected, (party, other, isa_states)
            assert isa_states[(other, "siro")] == expected, (party, other, isa_states)
        row = signature(signer, isa_id, party, "siro")
        assert PEOPLE[key][1] in await row.inner_text()
        assert len(isa_states) == 6 and len(dpia_states) == 3
        await signer.context.close()

    # -- IGfL endorses the agreement. -----------------------------------------------------------
    rita = await sign_in(browser, base, email_of("reviewer"))
    await rita.goto(f"{base}/projects/{project_id}/sign-off")
    await rita.get_by_role("button", name="Record the endorsement decision").click()
    await rita.get_by_role("status").filter(has_text="Endorsement decision recorded").wait_for()
    await rita.context.close()

    # -- The owner sees the project approved by every party, and the endorsement. -----------
    await olive.goto(f"{base}/projects/{project_id}")
    await olive.get_by_text("Approved by every party.").wait_for()
    for document_id in (dpia_id, isa_id):
        caption = olive.locator(f"#approved-{document_id}")
        assert await caption.inner_text() == "approved by every party"
    endorsement = await olive.locator(f"#endorsement-{isa_id}").inner_text()
    assert endorsement.startswith(f"Endorsed by {IGFL} (Rita Reviewer,"), endorsement
    await olive.goto(f"{base}/projects/{project_id}/sign-off")
    assert await olive.locator("#project-approved").inner_text() == "approved by every party"

    # -- Later, the DPIA's aims change: the ISA's purpose was drafted from them. ---------------
    await open_field(olive, base, dpia_id, "need.aims")
    await type_into(olive, "need.aims", " " + DPIA_CHANGE)
    await open_field(olive, base, isa_id, "purpose.purpose")
    notice = olive.locator("#source-changed")
    async with asyncio.timeout(WAIT_MS / 1000):
        while not await notice.count():  # the change is checked once the DPIA is saved
            await olive.reload()
            await olive.wait_for_selector('#connection-state[data-state="connected"]')
    assert "Source changed: 1 answer" in await notice.inner_text()
    await notice.get_by_role("link", name="See what changed and confirm").click()
    await olive.wait_for_url(f"{base}/dpias/{isa_id}/sources")
    purpose = olive.locator('tr[id="source-purpose.purpose"]')
    assert "Source changed, edited by Olive Owner" in await purpose.inner_text()
    diff = await purpose.locator("pre.diff").inner_text()
    assert any(line.startswith("+") and DPIA_CHANGE in line for line in diff.splitlines()), diff
    assert "Who should look:" in await olive.locator("main").inner_text()

    # The agreement's signatures are stale: every party owes them again.
    await olive.goto(f"{base}/projects/{project_id}")
    await olive.get_by_text("Not yet approved by every party.").wait_for()
    isa_states = await states(olive, isa_id)
    assert set(isa_states.values()) == {"Stale: changed since signed"}, isa_states
    assert len(isa_states) == 6
    stale = signature(olive, isa_id, TRUST, "dpo")
    assert "Nia Trust" in await stale.inner_text()
    await keep_screenshot(olive, "project-journey.png", full_page=True)
