"""Each treatment on small columns: what it outputs, what it counts, what it refuses."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from deid import ColumnRule, Crosswalk, PolicyError, TreatmentContext, make_treatment, parse_dates

SECRET = b"0123456789abcdef0123456789abcdef"


def _run(
    source: str,
    treatment: str,
    values: list,
    *,
    table: dict | None = None,
    k: int = 2,
    secret: bytes | None = SECRET,
    crosswalk: Crosswalk | None = None,
    **params,
):
    rule = ColumnRule(source, treatment, params=params)
    t = pa.table(table or {source: pa.array(values, pa.string())})
    ctx = TreatmentContext(
        table=t, k=k, secret=secret, crosswalk=crosswalk, reference_date=dt.date(2024, 9, 1)
    )
    tr = make_treatment(rule)
    out = tr.fit_apply(t.column(source), ctx)
    return out.to_pylist(), tr


def test_parse_dates_mixed_formats_and_excel_serials():
    values = [
        "03/05/2008",
        "3/5/2008",
        "2008-03-05",
        "3/5/08",
        "39512",
        "20080305",
        "2008-03-05 00:00:00",
        "12/31/99",
        "",
        None,
        "not a date",
        "13/45/2008",
    ]
    dates, bad = parse_dates(pa.array(values))
    got = dates.to_pylist()
    assert got[:7] == [dt.date(2008, 3, 5)] * 7
    assert got[7] == dt.date(1999, 12, 31)
    assert got[8:] == [None] * 4
    assert bad == 2  # "not a date" and the impossible month; empty cells are not "bad"


def test_generalize_date_year_month_age_band():
    vals = ["03/05/2008", "2010-09-02", None, "junk"]
    assert _run("DOB", "generalize_date", vals, to="year")[0] == ["2008", "2010", None, None]
    assert _run("DOB", "generalize_date", vals, to="year_month")[0] == ["2008-03", "2010-09", None, None]
    ages, tr = _run("DOB", "generalize_date", vals, to="age")
    assert ages == ["16", "13", None, None]  # 2010-09-02 is one day short of 14 on 2024-09-01
    assert any("1 value(s) of 'DOB' could not be read as dates" in n for n in tr.notes)
    bands = _run("DOB", "generalize_date", vals, to="age_band", edges=[0, 5, 14, 18])[0]
    assert bands == ["14-17", "5-13", None, None]
    assert _run("DOB", "generalize_date", ["2000-01-01"], to="age", reference_date="2010-01-01")[0] == ["10"]


def test_bucket_labels_top_and_bottom_coding():
    vals = ["0", "0.99", "1", "3.7", "4.5", "5", "-1", "abc", None]
    out, tr = _run("GPA", "bucket", vals, edges=[0, 1, 2, 3, 4.5])
    assert out == ["[0, 1)", "[0, 1)", "[1, 2)", "[3, 4.5]", "[3, 4.5]", None, None, None, None]
    assert any("fell outside" in n for n in tr.notes) and any("as numbers" in n for n in tr.notes)
    assert _run("GPA", "bucket", ["3,5", " 2.0 "], edges=[0, 1, 2, 3, 4.5])[0] == ["[3, 4.5]", "[2, 3)"]
    out, _ = _run("n", "bucket", ["0", "3", "12", "40"], edges=[0, 5, 10], top=10, bottom=1)
    assert out == ["< 1", "[0, 5)", ">= 10", ">= 10"]


def test_zip3_restricted_areas_small_areas_and_lost_zeros():
    vals = ["95123", "95124-1234", "95125", "03601", "2134", "02134", "02139", "9", None]
    out, _tr = _run("ZIP", "zip3", vals, k=2)
    # 951 x3 and 021 x3 stay; 036 is a Safe Harbor restricted area; "9" is unreadable
    assert out == ["951", "951", "951", "000", "021", "021", "021", None, None]
    out, _ = _run("ZIP", "zip3", ["95123", "95123", "90210"], k=2)
    assert out == ["951", "951", "000"]  # fewer than k rows in the file


def test_recode_rare():
    vals = ["A", "A", "B", "C", "C", "C", None]
    assert _run("c", "recode_rare", vals, min_count=2)[0] == ["A", "A", "Other", "C", "C", "C", None]
    assert _run("c", "recode_rare", vals, k=3)[0] == ["Other", "Other", "Other", "C", "C", "C", None]


def test_token_is_keyed_normalized_and_consistent():
    out, _ = _run("ID", "token", [" 0012 ", "0012", "ab  c", "AB C", None, ""])
    assert out[0] == out[1] and out[2] == out[3] and out[0] != out[2]
    assert len(out[0]) == 32 and out[4] is None and out[5] is None
    other, _ = _run("ID", "token", ["0012"], secret=b"another secret of enough length!!")
    assert other[0] != out[0]
    with pytest.raises(PolicyError, match="secret"):
        _run("ID", "token", ["0012"], secret=None)


def test_fast_hmac_equals_the_standard_library():
    import hmac

    from deid._treatments import hmac_sha256

    for key in (b"k" * 32, b"short", b"x" * 100):
        mac = hmac_sha256(key)
        for msg in (b"", b"0012345678", "José".encode(), b"y" * 200):
            assert mac(msg) == hmac.digest(key, msg, "sha256")


def test_token_from_several_columns_normalizes_dates():
    table = {
        "ID": pa.array(["x", "y"]),
        "First": pa.array(["maria ", "MARIA"]),
        "DOB": pa.array(["03/05/2008", "2008-03-05"]),
    }
    out, _ = _run("ID", "token", [], table=table, **{"from": ["First", "DOB"]})
    assert out[0] == out[1]


def test_record_code_random_stable_and_never_the_id():
    cw = Crosswalk()
    ids = ["0012345678", "0012345678", "0000000001", None]
    out, _ = _run("SSID", "record_code", ids, crosswalk=cw)
    assert out[0] == out[1] and out[0] != out[2] and out[3] is None
    assert len(out[0]) == 12 and out[0] != ids[0]
    again, _ = _run("SSID", "record_code", ["0000000001", "0012345678"], crosswalk=cw)
    assert again == [out[2], out[0]]
    fresh, _ = _run("SSID", "record_code", ["0012345678"], crosswalk=Crosswalk())
    assert fresh[0] != out[0]  # random, not derived from the ID or the secret


def test_date_shift_is_per_student_and_bounded():
    table = {
        "SSID": pa.array(["1", "1", "2", None]),
        "Enroll": pa.array(["2020-01-10", "2020-02-10", "2020-01-10", "2020-01-10"]),
    }
    out, tr = _run("Enroll", "date_shift", [], table=table, by="SSID", max_days=5)
    d = [dt.date.fromisoformat(x) if x else None for x in out]
    assert (d[1] - d[0]).days == 31  # intervals within a student survive
    for x in d[:3]:
        assert 1 <= abs((x - dt.date(2020, 1, 10)).days) <= 5 or x.month == 2
    assert d[3] is None and any("no 'SSID'" in n for n in tr.notes)


def test_redact_text_uses_the_scanner():
    class FakeScanner:
        def redact_counted(self, column):
            out = pa.chunked_array([pa.array(["<PERSON>" if v else v for v in column.to_pylist()])])
            return out, 1, {"PERSON": 1}

    rule = ColumnRule("Notes", "redact_text")
    t = pa.table({"Notes": ["Maria", None]})
    ctx = TreatmentContext(table=t, scanner_factory=FakeScanner)
    treatment = make_treatment(rule)
    out = treatment.fit_apply(t.column("Notes"), ctx)
    assert out.to_pylist() == ["<PERSON>", None]
    assert treatment.redacted_by_kind == {"PERSON": 1}  # what the report's per-kind counts come from
