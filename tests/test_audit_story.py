"""The audit log told in the users' words (agreements.story): one line per action of a person, titles and
organization names instead of ids, local time, details as labelled values without hashes."""

from __future__ import annotations

import time

from agreements import AuditEntry, Names, local_time, story


def entry(seq: int, action: str, t: str, *, user: str = "ana", agreement: str | None = "A1",
          package: str | None = None, partner: str | None = None, **details) -> AuditEntry:
    return AuditEntry(seq, t, f"{user} (Lakeview)", action, agreement, partner, package, details, "", "")


NAMES = Names({"FP-R": "Riverbend Community College"}, {"A1": "Dual enrollment study"},
              {"P1": "the package pkg.age"})


def test_one_line_per_action_of_a_person():
    t = "2026-03-01T10:00:{:02d}Z"
    entries = [
        entry(1, "mapping.apply", t.format(0)),
        entry(2, "mapping.apply", t.format(5)),
        entry(3, "mapping.apply", t.format(9)),
        entry(4, "package.sealing", t.format(10), package="P1"),
        entry(5, "package.sealed", t.format(11), package="P1", recipients=["FP-R"], rows=2, bytes=2048),
        entry(6, "package.prepared", t.format(12), package="P1", rows_out=2),
        entry(7, "mapping.apply", t.format(20)),
        entry(8, "mapping.apply", t.format(21), user="bo"),  # another person: another line
        entry(9, "agreement.signed", t.format(30)),
        entry(10, "agreement.executed", t.format(31)),
        entry(11, "agreement.signed", t.format(40)),  # a second signature is a second action
    ]
    lines = story(None, entries, known=NAMES)
    assert [(x.first, x.last) for x in lines] == [(1, 6), (7, 7), (8, 8), (9, 10), (11, 11)]
    assert lines[0].sentence == (
        "Prepared and sealed the package pkg.age for Riverbend Community College under "
        "“Dual enrollment study”."
    )
    assert ("Size", "2.0 KB") in lines[0].details and ("Recipients", "Riverbend Community College") in \
        lines[0].details
    assert ("Recorded as", "6 entries (#1–#6)") in lines[0].details
    assert '"action": "package.prepared"' in lines[0].technical()
    assert lines[3].sentence == "Signed the agreement “Dual enrollment study”."


def test_entries_hours_apart_are_separate_lines():
    lines = story(None, [entry(1, "mapping.apply", "2026-03-01T08:00:00Z"),
                         entry(2, "mapping.apply", "2026-03-01T11:00:00Z")], known=NAMES)
    assert len(lines) == 2


def test_refusals_and_unknown_actions_are_said_plainly():
    lines = story(None, [entry(1, "partner.import.refused", "2026-03-01T08:00:00Z", agreement=None,
                               reason="our own card"),
                         entry(2, "something.new", "2026-03-01T08:00:01Z", agreement=None)], known=NAMES)
    assert lines[0].sentence == "Refused: added a partner's card (our own card)."
    assert lines[1].sentence == "Recorded “something: new”."


def test_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert local_time("2026-07-01T20:30:00.123Z") == "2026-07-01 13:30"
        assert story(None, [entry(1, "vault.create", "2026-01-01T01:00:00Z")], known=NAMES)[0].when == \
            "2025-12-31 17:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_vaults_story_names_organizations_and_titles_not_ids(sides):
    district, college, aid = sides  # the suite's two organizations (tests/conftest.py)
    lines = story(district.vault, district.vault.audit.entries())
    text = " ".join(x.sentence + " " + " ".join(v for _, v in x.details) for x in lines)
    assert college.fp not in text and aid not in text and aid[:8] not in text
    assert "Added Riverbend Community College's card." in [x.sentence for x in lines]
    title = district.vault.db.execute("SELECT title FROM agreements").fetchone()[0]
    assert f"Signed the agreement “{title}”." in [x.sentence for x in lines]
    # No entry is lost or told twice.
    assert [e.seq for x in lines for e in x.entries] == [e.seq for e in district.vault.audit.entries()]


def test_outcome_releases_are_told_too():
    lines = story(None, [entry(1, "outcomes.released", "2026-03-01T08:00:00Z", tables=3, min_cell=11,
                               hidden_primary=2, metrics=["enrolled_fall"])], known=NAMES)
    assert lines[0].sentence == "Released 3 outcome table(s) under “Dual enrollment study”."
    assert ("Small cells hidden", "2") in lines[0].details
    assert ("Measures", "enrolled_fall") in lines[0].details
