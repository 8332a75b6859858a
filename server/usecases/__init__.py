"""The use-case layer: every action on a DPIA, written once.

Above ``server.realtime`` (rooms) and ``server.services`` (records, transactions), below the
channels that call it: ``server.web`` (pages and the JSON API), ``email_bridge`` and
``server.cli``. A channel translates its input (a form, a JSON body, an email, arguments)
into one call here and the outcome back into its own terms; it decides nothing itself.

Each action composes the same pieces in one place: the actor's standing on the DPIA, the
action's policy (a pure function of ``server.domain``), the services that record it, and
the room, which writes the document, waits for pending commits before anything is hashed
or gated, and is told when access changed (``RoomManager.access_changed``) or the DPIA
was locked.

Errors are the domain's (``server.domain.errors``); each channel maps them in one place.

| module | actions |
|---|---|
| ``participants`` | a member's standing; invite, change role, remove; parties; reviewers |
| ``comments`` | post a comment (browser, API token, email reply); reply, resolve, reopen |
| ``history`` | restore a field from a past version |
| ``workflow`` | change status, section steps, the IG step |
| ``signoffs`` | sign, re-confirm, revoke |
| ``parties`` | sign for a party in a capacity; endorse as a reviewing body |
| ``inbound`` | owners' decisions about inbound mail (release, discard, resume) |
| ``administration`` | suspending and reinstating a person (their open connections follow) |
| ``protection`` | delete a DPIA, archive the expired, erase a person |
| ``projects`` | start a step (drafting the DPIA and the ISA), fill empty DPIA fields, sources |
| ``project_people`` | add a person or an organisation to every document of a project |
| ``reviews`` | start a review (a new version; the approved one stays in force); raise a trigger |
| ``templates`` | move a DPIA to its template's newest version, after seeing what changes |
| ``risk_proposals`` | risks proposed from the catalogue: accept, or dismiss with a reason |
"""

from __future__ import annotations

from dataclasses import dataclass

from server.usecases.administration import Administer
from server.usecases.comments import Comments
from server.usecases.history import History
from server.usecases.inbound import InboundMail
from server.usecases.participants import Participants
from server.usecases.parties import PartySignOffs
from server.usecases.project_people import ProjectPeople
from server.usecases.projects import Projects
from server.usecases.protection import DataProtection
from server.usecases.reviews import Reviews
from server.usecases.risk_proposals import RiskProposals
from server.usecases.signoffs import SignOffs
from server.usecases.templates import TemplateMoves
from server.usecases.workflow import Workflow


@dataclass(frozen=True, slots=True)
class UseCases:
    """The actions, built by the composition root (``server.bootstrap``)."""

    participants: Participants
    comments: Comments
    history: History
    workflow: Workflow
    signoffs: SignOffs
    inbound: InboundMail
    administer: Administer
    protection: DataProtection
    projects: Projects
    parties: PartySignOffs
    project_people: ProjectPeople  # adding a person or a party to a whole project
    reviews: Reviews  # review cycles: start a review, raise a trigger (issue 17)
    templates: TemplateMoves  # moving a DPIA to the newest version of its template
    risk_proposals: RiskProposals  # the template's risk catalogue, proposed from the answers
