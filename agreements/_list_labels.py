"""What the agreement lists and the dashboard chart call a status, in the users' words: the label of an
agreement's status (draft · awaiting signatures — whose · executed · expiring soon · …), the filter it
belongs to, and the chart's groups. The CLI and the app show these; the rule for "expiring soon" is
:data:`EXPIRING_DAYS` here, once.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agreements._agreement_store import AgreementSummary


EXPIRING_DAYS = 60  # the dashboard's horizon for "expiring soon"

STATUS_FILTERS = ("all", "draft", "awaiting", "executed", "expiring", "expired", "terminated")


def status_label(summary: AgreementSummary, today: date | None = None, days: int = EXPIRING_DAYS) -> str:
    """What the agreements list shows: draft · awaiting signatures — whose · executed · expiring soon
    (in N days) · expired · terminated · superseded · executed, in effect from DATE."""
    today = today or date.today()
    s = summary.status
    if s == "draft":
        return "draft (unsigned)"
    if s == "proposed":
        return "awaiting signatures — " + ", ".join(summary.awaiting)
    if s == "executed":
        if today < summary.effective:
            return f"executed, in effect from {summary.effective.isoformat()}"
        left = (summary.expires - today).days
        if left <= days:
            return f"expiring soon — in {left} day{'s' if left != 1 else ''}"
        return "executed"
    return s


def status_key(summary: AgreementSummary, today: date | None = None, days: int = EXPIRING_DAYS) -> str:
    """The filter a summary belongs to (one of ``STATUS_FILTERS`` but "all")."""
    today = today or date.today()
    if summary.status == "proposed":
        return "awaiting"
    if summary.status == "executed" and summary.effective <= today and (summary.expires - today).days <= days:
        return "expiring"
    return summary.status


AGREEMENT_GROUPS = (
    ("draft", "Drafts"),
    ("awaiting", "Awaiting signatures"),
    ("executed", "In force"),
    ("expiring", f"Ending within {EXPIRING_DAYS} days"),
    ("expired", "Expired"),
    ("terminated", "Terminated"),
)


# PackageRecord.state -> the chart's short label (the lists say more: STATE_LABELS).
SENT_GROUPS = (
    ("open", "No receipt yet"),
    ("delivered", "Delivered"),
    ("refused", "Refused"),
    ("closed", "Destroyed"),
    ("void", "Void"),
)
RECEIVED_GROUPS = (("open", "Not yet destroyed"), ("closed", "Destroyed"))
