"""Counselor notes: free text with planted PII at known character offsets, built column-wise.

A note is up to four sentences ("slots"). Each sentence comes from a template
``prefix {value1} middle {value2} suffix`` whose values are drawn from per-row arrays (the student's
own first name, a guardian's name, a phone number, an SSN, ...). Sentences are concatenated with
pyarrow, and the offsets of every value follow from the lengths of the pieces before it, so the
truth (row, kind, start, end) is exact without ever looking at a note one by one. Innocuous sentences
carry look-alikes (dates, course numbers, room numbers, extensions, CDS codes) to measure precision.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._synth import _tables as t

# Value kinds (indices into the per-row value arrays) and the PII kind each one plants.
NONE, FIRST, FULL, TEACHER, GUARDIAN, OTHER, OTHER_FIRST = 0, 1, 2, 3, 4, 5, 6
PHONE, PHONE2, EMAIL, SEMAIL, STAFF_EMAIL, SSN, SSID, LOCAL_ID, LAST = 7, 8, 9, 10, 11, 12, 13, 14, 15
VALUE_KINDS = 16
SPAN_KINDS = ("PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "STUDENT_ID")
_SPAN_KIND_OF_VALUE = np.array([-1, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 0])
# Where each planted value comes from (the truth's spans["source"]): the student's own data, other
# people in the file (guardians, other students: a roster can find them), or people not in the file
# (staff: only a name recognizer can).
SPAN_SOURCES = (
    "", "student_first_name", "student_full_name", "staff_last_name", "guardian_name",
    "other_student_full_name", "other_student_first_name", "household_phone", "other_phone",
    "guardian_email", "student_email", "staff_email", "ssn", "student_ssid", "student_local_id",
    "student_last_name",
)  # fmt: skip

# (weight, prefix, value1, middle, value2, suffix). Titles (Ms., Dr.) are outside the PERSON span.
TEMPLATES: tuple[tuple[float, str, int, str, int, str], ...] = (
    (0.0, "", NONE, "", NONE, ""),  # the empty slot (inactive); never drawn
    (5, "", FIRST, " met with me about A-G requirements and college applications.", NONE, ""),
    (4, "Spoke with ", GUARDIAN, " by phone at ", PHONE, "."),
    (3, "Parent email: ", EMAIL, ".", NONE, ""),
    (4, "", FULL, " is missing two assignments in MATH 101.", NONE, ""),
    (4, "Referred to Ms. ", TEACHER, " for tutoring in Room 214.", NONE, ""),
    (3, "Mr. ", TEACHER, " reports ", FIRST, " was late to period 3 on 10/14/2025."),
    (1.2, "SSN on file ", SSN, " per registration packet.", NONE, ""),
    (2, "Transcript request for SSID ", SSID, " sent 05/02/2025.", NONE, ""),
    (2.5, "Conflict with ", OTHER, " during lunch; mediation scheduled.", NONE, ""),
    (2.5, "Mom (", GUARDIAN, ") asked to be called back at ", PHONE2, "."),
    (2, "Student emailed from ", SEMAIL, " about the pathway 152 schedule.", NONE, ""),
    (4, "", FIRST, " wants to take ENGL 1A at the college in spring.", NONE, ""),
    (2, "Dad's cell ", PHONE2, "; prefers text.", NONE, ""),
    (0.8, "Social security number ", SSN, " was written on the work permit form.", NONE, ""),
    (3, "Called home, left message for ", GUARDIAN, ".", NONE, ""),
    (1.5, "Please contact Dr. ", TEACHER, " at ", STAFF_EMAIL, " about the IEP."),
    (1.5, "Student ID ", LOCAL_ID, " verified against CALPADS.", NONE, ""),
    (2, "", FIRST, " and ", OTHER_FIRST, " are working on the robotics project."),
    (3, "Checked in with ", FULL, " after 4th period.", NONE, ""),
    (1.5, "Grandmother ", GUARDIAN, " can be reached at ", EMAIL, "."),
    (1, "SSID ", SSID, " and local ID ", LOCAL_ID, " did not match; fixed by the registrar."),
    (0.6, "", SSN, " listed as the student's SSN on the FAFSA worksheet.", NONE, ""),
    (2, "Home visit with the ", LAST, " family; transportation discussed.", NONE, ""),
    # Innocuous sentences, with look-alikes of PII.
    (5, "Reviewed A-G progress; on track for graduation in June 2026.", NONE, "", NONE, ""),
    (4, "Enrolled in MATH 101 and BIO 2 for fall; see Room 118 after 3:15 pm.", NONE, "", NONE, ""),
    (3, "Will follow up May 12 regarding the work permit.", NONE, "", NONE, ""),
    (3, "Attendance improved to 94% since 09/15/2025.", NONE, "", NONE, ""),
    (3, "Needs 10 more credits in Area B; recommended summer session.", NONE, "", NONE, ""),
    (2, "Scored 87 on the PSAT practice test, section 2.", NONE, "", NONE, ""),
    (3, "IEP meeting moved to 11/03/2025 at 8:30 am.", NONE, "", NONE, ""),
    (2, "Completed 40 hours of internship at the county fairgrounds.", NONE, "", NONE, ""),
    (2, "Schedule change approved - period 4 to period 6.", NONE, "", NONE, ""),
    (2, "Career interest inventory done; interested in pathway 152 (Health Science).", NONE, "", NONE, ""),
    (1.5, "Grant application submitted; Hope scholarship info sent home.", NONE, "", NONE, ""),
    (
        2,
        "Discussed the CSU and UC application timelines, the FAFSA/CADAA deadline of 03/02/2026, "
        "and community college options including ENGL 1A, MATH 110 and COUN 5; student will "
        "bring the signed plan back next week.",
        NONE,
        "",
        NONE,
        "",
    ),
    (1.5, "Bell schedule changed for Room 204; front office Ext. 2231.", NONE, "", NONE, ""),
    (1.5, "Work permit number 2025-4471 issued on 2025-09-30.", NONE, "", NONE, ""),
    (1, "Transcript from CDS 19-64733-1931047 received.", NONE, "", NONE, ""),
    (1.5, "Credit recovery in HIST 10 (course 0712) complete.", NONE, "", NONE, ""),
    (1.5, "Tardy count 3 this semester; no action needed.", NONE, "", NONE, ""),
    (1, "Bus route 17 changed; no concerns.", NONE, "", NONE, ""),
)
SLOTS = 4
SLOT_COUNT_WEIGHTS = (15, 30, 30, 15, 10)  # notes with 0 (empty), 1, 2, 3, 4 sentences


def _messy_text(s: str) -> str:
    # Text pasted from a word processor: curly apostrophes and en dashes (Windows-1252 0x92, 0x96).
    # Both replacements keep the length, so the planted offsets stay right.
    return s.replace("'", "\u2019").replace(" - ", " \u2013 ")


def build_notes(
    rng: np.random.Generator, values: dict[int, pa.Array], n: int, messy: bool
) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """Notes for ``n`` rows and their planted spans.

    Spans: row, kind (index into SPAN_KINDS), start, end, source (value kind, index into SPAN_SOURCES).

    ``values`` maps each value kind (except NONE) to an array of ``n`` strings.
    """
    weights = np.array([w for w, *_ in TEMPLATES])
    fix = _messy_text if messy else (lambda s: s)
    p0 = pa.array([fix(x[1]) for x in TEMPLATES], pa.string())
    p1 = pa.array([fix(x[3]) for x in TEMPLATES], pa.string())
    p2 = pa.array([fix(x[5]) for x in TEMPLATES], pa.string())
    k1 = np.array([x[2] for x in TEMPLATES])
    k2 = np.array([x[4] for x in TEMPLATES])
    len_p0 = np.array([len(x[1]) for x in TEMPLATES])
    len_p1 = np.array([len(x[3]) for x in TEMPLATES])
    len_p2 = np.array([len(x[5]) for x in TEMPLATES])

    arrays = [pa.array([""] * n, pa.string())] + [values[k] for k in range(1, VALUE_KINDS)]
    stacked = pa.concat_arrays(arrays)
    lengths = np.stack([pc.utf8_length(a).to_numpy(zero_copy_only=False) for a in arrays]).astype(np.int64)
    rows = np.arange(n)

    n_slots = t.choice_index(rng, SLOT_COUNT_WEIGHTS, n)
    newline_rows = rng.random(n) < (0.3 if messy else 0.0)  # messy: sentences on separate lines
    seps = pa.array(["", " ", "\n"], pa.string())
    offset = np.zeros(n, dtype=np.int64)
    slots: list[pa.Array] = []
    span_parts: list[tuple[np.ndarray, ...]] = []
    used = np.zeros((n, len(TEMPLATES)), dtype=bool)
    for s in range(SLOTS):
        active = n_slots > s
        tpl = t.choice_index(rng, weights, n)
        # A sentence already in the note is replaced by the next template (never the empty one).
        for _ in range(SLOTS):
            again = used[rows, tpl]
            tpl = np.where(again, tpl % (len(TEMPLATES) - 1) + 1, tpl)
        tpl = np.where(active, tpl, 0)
        used[rows, tpl] = True
        sep = np.where(active, np.where(newline_rows, 2, 1), 0)
        kind1, kind2 = k1[tpl], k2[tpl]
        v1 = stacked.take(pa.array(kind1 * n + rows))
        v2 = stacked.take(pa.array(kind2 * n + rows))
        tpl_a = pa.array(tpl)
        slots.append(t.join(p0.take(tpl_a), v1, p1.take(tpl_a), v2, p2.take(tpl_a), seps.take(pa.array(sep))))
        l1, l2 = lengths[kind1, rows], lengths[kind2, rows]
        start1 = offset + len_p0[tpl]
        start2 = start1 + l1 + len_p1[tpl]
        for kind, start, length in ((kind1, start1, l1), (kind2, start2, l2)):
            has = kind != NONE
            span_parts.append(
                (rows[has], _SPAN_KIND_OF_VALUE[kind[has]], start[has], start[has] + length[has], kind[has])
            )
        offset = start2 + l2 + len_p2[tpl] + (sep > 0)
    notes = pc.utf8_rtrim_whitespace(t.join(*slots))
    row, kind, start, end, source = (np.concatenate([p[i] for p in span_parts]) for i in range(5))
    order = np.lexsort((start, row))
    return notes, {
        "row": row[order],
        "kind": kind[order],
        "start": start[order],
        "end": end[order],
        "source": source[order],
    }
