"""Dashboard: what needs the compliance officer today — agreements expiring within 60 days, packages past
their destruction deadline without a destruction certificate, packages sent but not yet opened (no
receipt, or a receipt saying the recipient refused it)."""

from __future__ import annotations

from datetime import date
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QVBoxLayout, QWidget

from desktop.ui.charts import BarChart
from desktop.ui.partners_page import ask_open, fill_table, fit_columns, fit_height, make_table
from desktop.ui.theme import heading_font
from desktop.ui.widgets import MessageBar, button, heading, paragraph, scrolling


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setFont(heading_font(label.font(), 1.15))
    label.setWordWrap(True)  # a long heading wraps at 800×600 instead of widening the page
    label.setAccessibleName(title)
    return label


class DashboardPage(QWidget):
    """Three lists, each with a one-line summary; Refresh reads them again."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.board: Any = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        outer.addWidget(heading("Dashboard"))
        self.summary = paragraph()
        outer.addWidget(self.summary)
        self.message = MessageBar()
        outer.addWidget(self.message)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 8, 0)
        # At a glance: counts as bars (agreements by status; packages sent and received by state).
        self.agreements_chart = BarChart("Agreements")
        self.sent_chart = BarChart("Packages sent")
        self.received_chart = BarChart("Packages received")
        charts = QHBoxLayout()
        charts.addWidget(self.agreements_chart, 1, Qt.AlignmentFlag.AlignTop)
        packages = QVBoxLayout()
        packages.addWidget(self.sent_chart)
        packages.addWidget(self.received_chart)
        charts.addLayout(packages, 1)
        layout.addLayout(charts)
        self.expiring_title = _section("Agreements expiring within 60 days")
        self.expiring_note = paragraph()
        self.expiring = make_table(
            ("Agreement", "Expires", "Days left", "Parties", "ID"), "Agreements expiring"
        )
        self.past_title = _section("Packages past their destruction deadline without a certificate")
        self.past_note = paragraph()
        self.past = make_table(
            ("Package file", "Agreement", "Deadline", "Certificate missing from", "Sent", "Package ID"),
            "Packages past their destruction deadline",
        )
        self.unreceipted_title = _section("Packages sent but not opened")
        self.unreceipted_note = paragraph()
        self.unreceipted = make_table(
            ("Package file", "Agreement", "Sent", "Not opened by", "Why", "Package ID"),
            "Packages without a receipt",
        )
        # Shown only when there is something: evidence that a partner's log or this vault was tampered with.
        self.partner_logs_title = _section("Partners whose audit log was rewritten or rolled back")
        self.partner_logs_note = paragraph()
        self.partner_logs = make_table(("Partner", "Found on", "What was found"), "Partners' audit logs")
        self.tampering_title = _section("This vault was tampered with")
        self.tampering_note = paragraph()
        for w in (
            self.tampering_title,
            self.tampering_note,
            self.partner_logs_title,
            self.partner_logs_note,
            self.partner_logs,
            self.expiring_title,
            self.expiring_note,
            self.expiring,
            self.past_title,
            self.past_note,
            self.past,
            self.unreceipted_title,
            self.unreceipted_note,
            self.unreceipted,
        ):
            layout.addWidget(w)
        for t, stretch in ((self.expiring, 0), (self.past, 1), (self.unreceipted, 1), (self.partner_logs, 2)):
            fit_columns(t, stretch)
        # A refusal's sentence is long: its column keeps a fixed width and elides (whole in the tooltip).
        self.unreceipted.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        self.unreceipted.setColumnWidth(4, 280)
        layout.addStretch(1)
        scroll = scrolling(body)
        outer.addWidget(scroll, 1)
        self.import_button = button(
            "&Import a receipt or certificate…",
            "Import a receipt or a destruction certificate a recipient sent back",
        )
        self.import_button.clicked.connect(lambda: self.import_returned())
        self.refresh_button = button("&Refresh", "Refresh the dashboard")
        self.refresh_button.clicked.connect(self.refresh)
        bar = QHBoxLayout()
        bar.addWidget(self.import_button)
        bar.addStretch(1)
        bar.addWidget(self.refresh_button)
        outer.addLayout(bar)
        self._loaded = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        # Always fresh when shown: the other screens change what it lists.
        self.refresh()

    def import_returned(self, path: str | None = None) -> bool:
        """Import what a recipient sent back (receipt or destruction certificate): the file chosen here,
        or ``path``. The library verifies, records and audits it; the lists below follow."""
        from agreements import import_returned_file
        from deid.errors import PathShareError

        if path is None:
            path = ask_open(
                self, self.session, "returned", "Import a receipt or destruction certificate", "JSON (*.json)"
            )
            if not path:
                return False
        try:
            returned = import_returned_file(self.session.vault, path)
        except PathShareError as exc:
            self.refresh()
            self.message.show_problem(exc)
            return False
        self.refresh()
        self.message.show_info(returned.sentence)
        return True

    def refresh(self, today: date | None = None) -> None:
        """Read the three lists (short vault reads)."""
        from agreements import dashboard, overview
        from deid.errors import PathShareError

        self.message.clear()
        try:
            board = dashboard(self.session.vault, today)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.board = board
        try:
            counts = overview(self.session.vault, today)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.counts = counts
        self.agreements_chart.set_rows(counts.agreements)
        self.sent_chart.set_rows(counts.sent)
        self.received_chart.set_rows(counts.received)
        fill_table(
            self.expiring,
            [
                (
                    s.title,
                    s.expires.isoformat(),
                    (s.expires - board.today).days,
                    ", ".join(s.parties),
                    s.id[:8],
                )
                for s in board.expiring
            ],
            [s.id for s in board.expiring],
        )
        fill_table(
            self.past,
            [
                (p.file, p.agreement_title, p.deadline, ", ".join(p.missing), p.sent[:10], p.package_id[:8])
                for p in board.past_deadline
            ],
            [p.package_id for p in board.past_deadline],
        )
        fill_table(
            self.unreceipted,
            [
                (
                    p.file,
                    p.agreement_title,
                    p.sent[:10],
                    ", ".join(p.missing),
                    _why(p.refused, p.missing),
                    p.package_id[:8],
                )
                for p in board.without_receipt
            ],
            [p.package_id for p in board.without_receipt],
        )
        fill_table(
            self.partner_logs,
            [(p.org, p.time[:10], p.reason) for p in board.partner_logs],
            [p.partner for p in board.partner_logs],
        )
        n4, n5 = len(board.partner_logs), len(board.tampering)
        for w in (self.partner_logs_title, self.partner_logs_note, self.partner_logs):
            w.setVisible(n4 > 0)
        fit_height(self.partner_logs)
        self.partner_logs_note.setText(
            "What these partners signed for you earlier no longer holds in their audit log: someone there "
            "changed or restored it. Ask them why, and ask for an audit bundle to see what changed."
        )
        for w in (self.tampering_title, self.tampering_note):
            w.setVisible(n5 > 0)
        self.tampering_note.setText(
            "When this vault was opened, what it stored disagreed with its own audit log (part of an older "
            "copy of the vault was put back). PathShare followed the audit log. Found: "
            + "; ".join(board.tampering)
            + ". Tell your security officer."
        )
        n1, n2, n3 = len(board.expiring), len(board.past_deadline), len(board.without_receipt)
        for table, n in ((self.expiring, n1), (self.past, n2), (self.unreceipted, n3)):
            table.setVisible(n > 0)  # an empty list is said in words, not shown as an empty grid
            fit_height(table)
        self.expiring_note.setText(
            "Renew (amend) or wind down these agreements before they end."
            if n1
            else "No agreement in force ends within 60 days."
        )
        self.past_note.setText(
            "Ask each recipient named here for its signed destruction certificate, then import it below."
            if n2
            else "Every package whose deadline has passed is certified destroyed."
        )
        self.unreceipted_note.setText(
            "Ask the recipients named here whether the package arrived (their receipt proves delivery; "
            "import it below); where one refused it, its reason says what to fix before sending again."
            if n3
            else "Every package sent has come back opened."
        )
        attention = n1 + n2 + n3 + n4 + min(n5, 1)
        self.summary.setText(
            f"As of {board.today.isoformat()}: "
            + (
                f"{attention} item{'s' if attention != 1 else ''} need{'' if attention != 1 else 's'} "
                "attention."
                if attention
                else "nothing needs attention."
            )
        )


def _why(refused: tuple[tuple[str, str], ...], missing: tuple[str, ...] = ()) -> str:
    """Why a sent package is not opened: no receipt yet, or the refusal (whose, when several, and who
    has not answered beside those who refused)."""
    if not refused:
        return "no receipt yet"
    silent = [org for org in missing if org not in {o for o, _ in refused}]
    if len(refused) == 1 and not silent:
        return f"refused: {refused[0][1]}"
    return "; ".join(
        [f"{org} refused: {reason}" for org, reason in refused] + [f"{org}: no receipt yet" for org in silent]
    )
