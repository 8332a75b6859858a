"""The words people read for the application's own vocabulary, in one place.

Ids are for the code and the wire (a section's ``need``, a role's ``commenter``, a status's
``in_review``, a decision's ``approve``); people read labels. Each enum a person meets takes
its ``.label`` from one table here, keyed by the enum's value, so the enums keep their
rules and this module keeps their words: a translation replaces this module and nothing
else. A section is named by its template's own title (``section_title``), never its id.

The phrases below (notices after an action, what a notification says happened, how the
history tells an event) are the sentences built from those labels. They take labels and
plain values, not the enums, so that this module imports nothing from the domain and every
enum can import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# -- labels, one table per vocabulary (keys are the enums' values) ----------------------------

ROLES = {
    "owner": "Owner",
    "editor": "Editor",
    "commenter": "Commenter",
    "viewer": "Viewer",
    "dpo": "DPO",
}
# A role inside a sentence: "You take part as an editor", "A commenter cannot …".
ROLES_IN_TEXT = {
    "owner": "an owner",
    "editor": "an editor",
    "commenter": "a commenter",
    "viewer": "a viewer",
    "dpo": "a DPO",
}
DPIA_STATUSES = {
    "draft": "Draft",
    "in_review": "In review",
    "dpo_review": "DPO review",
    "awaiting_approval": "Awaiting approval",
    "approved": "Approved",
    "approved_with_conditions": "Approved with conditions",
    "rejected": "Rejected",
    "in_force": "In force",
    "under_review": "Under review",
    "superseded": "Superseded",
    "archived": "Archived",
    "abandoned": "Abandoned",
}
SECTION_STATES = {
    "empty": "Empty",
    "in_progress": "In progress",
    "submitted": "Submitted",
    "changes_requested": "Changes requested",
    "reviewed": "Reviewed",
    "signed_off": "Signed off",
    "stale": "Stale",
}
SECTION_ACTIONS = {
    "submit": "Submit for review",
    "request_changes": "Request changes",
    "review": "Mark as reviewed",
    "reopen": "Reopen for editing",
}
DECISIONS = {
    "approve": "Approve",
    "approve_with_conditions": "Approve with conditions",
    "reject": "Reject",
    "advise": "Advise",
    "accept": "Accept",
    "overrule": "Overrule",
    "consulted": "Consulted",
    "endorse": "Endorse",
    "withhold": "Withhold endorsement",
}
# A decision as a record says it, once made ("Approved", not "Approve").
DECISIONS_MADE = {
    "approve": "Approved",
    "approve_with_conditions": "Approved with conditions",
    "reject": "Rejected",
    "advise": "Advice given",
    "accept": "Advice accepted",
    "overrule": "Advice overruled",
    "consulted": "ICO consulted",
    "endorse": "Endorsed",
    "withhold": "Endorsement withheld",
}
# What a sign-off form offers to sign (the kinds of sign-off that are not step-7 rows are
# named by what they cover).
SIGNING = {"section": "A section (once reviewed)", "item": "A risk or a measure"}
SIGNOFF_STATES = {
    "valid": "Valid",
    "stale": "Stale",
    "revoked": "Revoked",
    "superseded": "Superseded",
}
PARTY_ROLES = {
    "controller": "Controller",
    "joint_controller": "Joint controller",
    "processor": "Processor",
    "recipient": "Recipient",
}
CHANNELS = {"browser": "Browser", "email": "Email", "api": "API", "cli": "Command line"}
# A person's role in their organisation (administration pages), not on a DPIA.
ORG_ROLES = {"member": "Member", "admin": "Administrator"}
# What the administration's audit chain names each recorded value by.
ADMIN_FIELDS = {
    "signatory_roles": "Signs as",
    "reviewing_body": "Reviewing body",
    "code": "Code",
    "name": "Name",
    "email": "Email",
    "role": "Role",
    "active": "State",
    "outside_partners": "Outside partners",
    "link_sent": "Password link emailed",
    "deployment_admin": "Deployment administrator",
    "issuer": "Identity provider",
    "client_id": "Client ID",
    "tenant": "Tenant",
    "jit": "Accounts made at first sign-in",
    "admin_group": "Administrator group",
    "forbid_passwords": "Passwords forbidden",
    "domains": "Email domains",
    "secret_changed": "Client secret changed",
    "retention_months": "Closed DPIAs kept (months)",
    "template": "Template",
    "title": "Title",
    "based_on": "Made from",
    "version": "Version",
    "publisher": "Published by",
    "dpia": "DPIA",
}
# The words for a recorded yes or no, where "yes" and "no" would not say it.
ADMIN_FLAGS = {
    "active": ("Active", "Suspended"),
    "outside_partners": ("Allowed", "Not allowed"),
    "reviewing_body": ("A reviewing body", "Not a reviewing body"),
}
# What the administration's audit chain calls each kind of event.
ADMIN_EVENTS = {
    "organisation_created": "Organisation added",
    "organisation_changed": "Organisation changed",
    "person_invited": "Person invited",
    "role_changed": "Role changed",
    "person_suspended": "Suspended",
    "person_reinstated": "Reinstated",
    "deployment_admin_granted": "Made a deployment administrator",
    "deployment_admin_revoked": "No longer a deployment administrator",
    "sign_in_settings": "Sign-in settings changed",
    "person_provisioned": "Account made at first sign-in",
    "role_set": "Role set by the identity provider",
    "retention_changed": "Retention changed",
    "signatory_roles_changed": "Signatory roles changed",
    "reviewing_body_changed": "Reviewing body changed",
    "ropa_entry_added": "Record of processing: entry added",
    "ropa_entry_changed": "Record of processing: entry changed",
    "ropa_entry_confirmed": "Record of processing: entry confirmed",
    "template_made": "Template made",
    "template_draft_opened": "Template: new draft opened",
    "template_saved": "Template: draft saved",
    "template_published": "Template published",
    "template_adopted": "Template adopted",
    "dpia_template_moved": "DPIA moved to a new template version",
}
# The standing of an entry of the record of processing activities.
ROPA_STATES = {
    "hand": "Added by hand",
    "unconfirmed": "Not yet confirmed",
    "confirmed": "Confirmed",
    "changed": "DPIA changed since confirmed",
}
# What became of an email reply (the inbound mail page).
INBOUND_OUTCOMES = {
    "pending": "Pending",
    "posted": "Posted",
    "applied": "Posted",
    "merged": "Added to a comment",
    "trigger": "Raised a review trigger",
    "held": "Held for an owner",
    "released": "Posted by an owner",
    "discarded": "Discarded",
    "refused": "Refused",
    "duplicate": "Already received",
    "bounce": "Bounced",
    "dropped": "Dropped",
    "auto_reply": "Automatic reply",
    "unsubscribed": "Unsubscribed",
}
# What the history calls each kind of event.
EVENTS = {
    "created": "Created",
    "edit": "Edited",
    "comment": "Comment",
    "reply": "Reply",
    "invitation": "Invitation",
    "status": "Status",
    "section": "Section review",
    "signoff": "Sign-off",
    "signoff_revoked": "Sign-off revoked",
    "signoff_stale": "Sign-off stale",
    "source_confirmed": "Drafted answer confirmed against its source",
    "ig_step": "IG process step",
    "export": "Export",
    "import": "Import",
    "restore": "Restore",
}
# The heading of an error page, by its HTTP status (the message says what was wrong).
ERROR_HEADINGS = {
    401: "Sign in again",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    413: "Too large",
    429: "Too many attempts",
    500: "Sorry, there is a problem with the service",
    503: "Sorry, the service is unavailable",
}
ERROR_HEADING = "Something is wrong"
# Pages for a request the server could not complete (server.web.public.server_error).
DATABASE_UNAVAILABLE = (
    "OpenDPIA could not reach its database just now, so this was not done. "
    "Try again in a few seconds."
)
SERVER_ERROR = (
    "Something went wrong on our side and this was not completed. Try again; if it "
    "happens again, tell your IT team this reference: {reference}."
)
# What a notification says someone did, before the section's title ("commented on Need").
NOTICE_VERBS = {
    "change": "changed",
    "comment": "commented on",
    "invitation": "invited you to",
    "status": "changed the status of",
    "stale": "changed, after your sign-off,",
    "review": "reminds you of the review of",
    "trigger": "raised a review trigger on",
}


def label(table: Mapping[str, str], value: str) -> str:
    """The label of ``value`` in ``table``; an unknown value (an old record, a newer
    installation's export) is shown as words rather than as an id."""
    return table.get(value) or value.replace("_", " ").capitalize()


def sentence(text: str) -> str:
    """``text`` starting with a capital letter (for messages built from parts)."""
    return text[:1].upper() + text[1:]


# -- sections and fields, by the template's own words ------------------------------------------


def section_title(sections: Iterable[Mapping[str, Any]], section_id: str) -> str:
    """A section's title in its template; a field path or row target names its section."""
    wanted = section_id.split(":", 1)[0].split(".", 1)[0]
    for section in sections:
        if section["id"] == wanted:
            return str(section["title"])
    return wanted.replace("_", " ").capitalize()


def field_label(sections: Iterable[Mapping[str, Any]], path: str) -> str:
    """``need.aims`` as "Section title — Field label" (the version comparison's form)."""
    section_id, _, name = path.partition(".")
    for section in sections:
        if section["id"] == section_id:
            for item in section["fields"]:
                if item["id"] == name:
                    return f"{section['title']} — {item['label']}"
            return str(section["title"])
    return path


def target_label(sections: Iterable[Mapping[str, Any]], target: str) -> str:
    """What a sign-off covers: a section by its title, a row (``risks.register:R1``) as
    "Risk R1", the whole DPIA as such."""
    if target in ("", "dpia"):
        return "The whole DPIA"
    if ":" in target:
        where, _, ref = target.partition(":")
        kind = {"risks": "Risk", "measures": "Measure"}.get(where.split(".", 1)[0], "Row")
        return f"{kind} {ref}"
    return section_title(sections, target)


# -- phrases -----------------------------------------------------------------------------------


def dpia_now(status_label: str) -> str:
    return f"The DPIA is now {status_label.lower()}."


def section_now(title: str, state_label: str) -> str:
    return f"“{title}” is now {state_label.lower()}."


def invited(role: str) -> str:
    """What an invitation says to the person invited."""
    return f"You take part as {label(ROLES_IN_TEXT, role)}."


def invited_you(role: str) -> str:
    """What an invitation's notification says the inviter did."""
    return f"invited you to take part as {label(ROLES_IN_TEXT, role)}"


def moved(old_label: str, new_label: str) -> str:
    """What a notification says of a status change."""
    return f"moved the DPIA from {old_label.lower()} to {new_label.lower()}"


def role_refused(role: str, doing: str, allowed: Iterable[str]) -> str:
    """Why a role may not do something, and who may: "A commenter cannot …; an owner or an
    editor can"."""
    who = " or ".join(label(ROLES_IN_TEXT, r) for r in sorted(allowed))
    return sentence(f"{label(ROLES_IN_TEXT, role)} cannot {doing}; {who} can")


def reading_as(role: str, *, editable: bool, locked: bool) -> str:
    """The editor's note of what the person may do there."""
    if editable:
        return f"Editing as {label(ROLES_IN_TEXT, role)}"
    if locked:
        return "Read only: approved or closed"
    return f"Read only: you take part as {label(ROLES_IN_TEXT, role)}"


# -- sign-off by every party, reviewing bodies, adoption (issue 16) ------------------------
# The capacities a member signs for their organisation in (memberships.signatory_roles).
CAPACITIES = {
    "dpo": "Data protection officer",
    "siro": "Senior information risk owner",
    "caldicott_guardian": "Caldicott Guardian",
    "reviewer": "Reviewer",
}
PARTY_SIGNATURE_STATES = {"signed": "Signed", "stale": "Stale", "outstanding": "Outstanding"}
REVIEWING_BODY = "Reviewing body"
NOT_A_PARTY = "You are not a member of any organisation that is a party to this project"
NOT_A_SIGNATORY = (
    "You hold no signatory role for a party to this project: "
    "an administrator of your organisation records who signs as DPO, SIRO or Caldicott Guardian"
)
CHOOSE_PARTY = "You can sign for more than one party or in more than one role: choose which"
NOT_A_REVIEWER = (
    "Only a member of a reviewing body invited to this project can endorse its agreement"
)
WITHHOLD_NEEDS_REASONS = "Say why: withholding an endorsement needs reasons, shown to every party"
ENDORSE_ISA_ONLY = "An endorsement is given on the information sharing agreement"
NOT_ENDORSED = "This agreement has no valid endorsement: only an endorsed agreement can be adopted"
REMINDED_TODAY = "Everyone outstanding was reminded in the last day already"


def capacity_refused(capacity: str, party: str) -> str:
    """Why a person may not sign in a capacity they do not hold."""
    return sentence(
        f"you do not hold the role {label(CAPACITIES, capacity)} for {party}: "
        "an administrator of that organisation records who signs in which role"
    )


def not_your_party(party: str) -> str:
    return sentence(f"you are not a member of {party}, so you cannot sign for it")


def signature_waiting(document: str, party: str, capacity: str, stale: bool) -> str:
    """A signature waiting for the reader, on the dashboard."""
    document = document if document.isupper() else document[:1].lower() + document[1:]
    if stale:
        return f"sign the {document} again for {party} as {capacity}: it changed since you signed"
    return f"sign the {document} for {party} as {capacity}"


# -- end of sign-off by every party -----------------------------------------------------------
# -- projects: the project pages and the dashboard (issue 16) ---------------------------------
# One block, so that the helpers of issue 16 add their words beside each other's.

# What each step's record is called on the project page and in lists (DocumentKind values).
DOCUMENT_KINDS = {
    "idea": "Idea",
    "prescreening": "Pre-screening",
    "feasibility": "Feasibility assessment",
    "dpia": "DPIA",
    "isa": "Information sharing agreement",
    "implementation": "Implementation record",
    "evaluation": "Evaluation",
}
PROJECT_NOT_STARTED = "Not started"
PROJECT_STEP_CURRENT = "Current step"


def step_of_seven(number: int, label: str) -> str:
    """ "Step 4 of 7: Co-create DPIA" (``label`` without its number)."""
    return f"Step {number} of 7: {label}"


def step_not_available(kind_label: str) -> str:
    return (
        f"This installation has no template for the {kind_label.lower()} yet: ask its administrator"
    )


def project_person_added(email: str, documents: int) -> str:
    plural = "document" if documents == 1 else "documents"
    return f"{email} now takes part in {documents} {plural} of this project."


def project_party_added(name: str, documents: int) -> str:
    plural = "document" if documents == 1 else "documents"
    return f"{name} is now a party to the project and its {documents} {plural}."


def review_overdue(date: str) -> str:
    return f"Review was due on {date}"


# -- review cycles (issue 17) --------------------------------------------------------------

REVIEW_PAGE_TITLE = "Review"
START_REVIEW = "Start review"
RAISE_TRIGGER = "Raise a review trigger"
REVIEW_BECAUSE_DATE = "Its review date"
NO_REVIEW_DATE = "No review date is set: set the next review date (or a review frequency)."


def _in_days(days: int) -> str:
    return "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"


# How a reply raises a review trigger; ``domain.reviews.trigger_in_reply`` reads it.
TRIGGER_REPLY_START = "This has changed:"


def review_reply_hint(examples: Iterable[str]) -> str:
    """What an email about an approved document tells a partner who replies by email: a
    reply is no longer a comment, and how to say that something changed (``examples``:
    the template's trigger labels)."""
    named = ", ".join(e.lower() for e in examples)
    return (
        "This document is approved, so a reply is no longer added to its discussion. If "
        f"something it describes has changed{f' ({named})' if named else ''}, reply with a "
        f"first line starting “{TRIGGER_REPLY_START}” and say what changed: the owners and "
        "the DPO are asked to review it."
    )


REVIEW_TRIGGER_LINK = "If something it describes has changed, raise a review trigger:"


def review_due_what(when: str, days: int) -> str:
    return f"reminds you: the review is due on {when} ({_in_days(days)})"


def review_due_excerpt(when: str, days: int) -> str:
    return (
        f"The review of this document is due on {when}, {_in_days(days)}. An owner or the "
        "DPO starts it from the document's review page."
    )


def trigger_raised(label: str, what: str) -> str:
    return f"Review trigger raised: {label}" + (f". {what}" if what else "")


def trigger_what(label: str) -> str:
    return f"raised a review trigger ({label.lower()})"


def review_started(reason: str, new_id: str) -> str:
    return f"Review started ({reason}); the new version is {new_id}"


def review_of(reason: str, old_id: str) -> str:
    return f"New version opened by a review of {old_id} ({reason})"


def review_started_notice(new_id: str) -> str:
    return (
        f"A review has started: the changes are made in {new_id}. This version stays in "
        "force, with its sign-offs and exports, until the new one is approved."
    )


def superseded_notice(successor: str, day: str, in_force: str | None) -> str:
    """What a superseded version says of the version that replaced it."""
    if in_force == successor:
        now = f"{successor} is the version in force now"
    elif in_force:
        now = f"{successor} was itself superseded: the version in force now is {in_force}"
    else:
        now = "no version of it is in force now"
    return (
        f"Superseded by {successor}, approved on {day}: {now}. This version is kept as it was "
        "signed, for the record, and has no review of its own."
    )


def in_force_notice(old_id: str) -> str:
    return (
        f"This is a review's new version. The approved version in force is {old_id}, "
        "until this one is approved. Its next review date starts empty: set it, or its "
        "review frequency counts from its approval."
    )


# A decision on a proposed risk, inside a sentence ("was already accepted").
RISK_OUTCOMES = {"accepted": "accepted", "dismissed": "dismissed"}


def risk_already_decided(title: str, outcome: str, by: str) -> str:
    """Why a proposed risk cannot be accepted or dismissed: someone decided it first
    (``outcome`` is ``accepted`` or ``dismissed``; ``by`` may be unknown, when the other
    decision was withdrawn as this one was refused)."""
    done = RISK_OUTCOMES.get(outcome, outcome)
    who = f" by {by}" if by else ""
    return (
        f"“{title}” was already {done}{who}: a proposed risk is decided once. "
        "Reload the page to see the decision; it is also in the history."
    )


def approval_waiting(days: int) -> str:
    return f"Sent for approval {days} days ago"
