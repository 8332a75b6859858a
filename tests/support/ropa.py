"""A DPIA's content filled for the record of processing: two processing activities, a
purpose for the whole DPIA, and measures of every type."""

from __future__ import annotations

from typing import Any

from server.domain.content import Content


def text(*paragraphs: str) -> list[dict[str, Any]]:
    return [{"type": "paragraph", "content": [{"text": p}]} for p in paragraphs]


FILLED: Content = {
    "processing": {
        "purposes": text("Fewer people sleeping rough for a second night."),
        "operations": [
            {
                "id": "op-outreach",
                "ref": "P1",
                "description": "Outreach teams check who the street-health team has seen",
                "data_categories": "Name, date of birth, last seen location",
                "special_category": True,
                "criminal_offence": False,
                "data_subjects": "People sleeping rough",
                "purpose": "Find people who need help sooner",
                "lawful_basis": "public-task",
                "condition": "9-2-h-health-social-care",
                "recipients": "Camden outreach team; NHS street-health team",
                "location_transfers": "UK only (Camden's data centre)",
                "retention": "12 months after last contact",
            },
            {
                "id": "op-report",
                "ref": "P2",
                "description": "Monthly counts for the steering group",
                "data_subjects": "People sleeping rough (counted only)",
                "lawful_basis": "legitimate-interests",
                "condition": "not-applicable",
            },
        ],
    },
    "necessity": {"international_transfers": text("No transfer outside the UK.")},
    "measures": {
        "plan": [
            {"id": "m1", "ref": "M1", "title": "Role-based access", "type": "technical"},
            {"id": "m2", "ref": "M2", "title": "Monthly access review", "type": "organisational"},
            {"id": "m3", "ref": "M3", "title": "Data sharing agreement", "type": "contractual"},
        ]
    },
}
