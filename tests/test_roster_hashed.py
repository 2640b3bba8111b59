"""The roster a streaming run collects batch by batch as keyed 64-bit hashes (deid._roster.RosterBuilder,
deid._strindex.HashSet): its look-ups and the scanner built from it give what the roster of columns
gives; a hash collision can only add a redaction, never miss one, and at how often that happens."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from deid import _strindex
from deid._roster import Roster, RosterBuilder, roster_columns
from deid._strindex import HashSet, PairedHashSet, hash64
from deid._textscan import roster_email_forms, roster_id_forms
from deid.synth import synth_file


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> pa.Table:
    folder = tmp_path_factory.mktemp("hashed")
    synth_file("k12", 300, folder / "k12.csv", seed=11)
    names = pcsv.read_csv(folder / "k12.csv").column_names
    table = pcsv.read_csv(folder / "k12.csv", convert_options=pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names}))
    # cells as exports write them too: padded, in capitals, short, empty
    ids = table.column("Local ID").to_pylist()
    ids[:4] = [" " + ids[0] + " ", "1234", None, ids[3].lower() + "x"]
    emails = table.column("Guardian Email").to_pylist()
    emails[:3] = ["  " + emails[0].upper(), "no-at-sign.example", None]
    names_col = table.column("Guardian Name").to_pylist()
    names_col[:2] = ["  MARIA  DE LA  CRUZ ", "O'Brien-Nguyen, Siobhán"]
    for col, vals in (("Local ID", ids), ("Guardian Email", emails), ("Guardian Name", names_col)):
        table = table.set_column(table.column_names.index(col), col, pa.array(vals, pa.string()))
    return table


def _collected(table: pa.Table, batch_rows: int) -> Roster:
    builder = RosterBuilder(roster_columns(table))
    for at in range(0, table.num_rows, batch_rows):
        builder.add(table.slice(at, batch_rows))
    return builder.finish()


def _queries(table: pa.Table) -> pa.Array:
    """Every cell of the table trimmed and in capitals (as the residual scan asks), plus near misses."""
    cells = pc.unique(pa.concat_arrays([c.combine_chunks() for c in table.columns]))
    cells = pc.drop_null(pc.utf8_upper(pc.utf8_trim_whitespace(cells)))
    near = pc.binary_join_element_wise(cells, pa.scalar("X"), "")
    return pc.unique(pa.concat_arrays([cells, near, pa.array(["", "1234", "MARIA DE LA CRUZ"])]))


@pytest.mark.parametrize("batch_rows", [7, 300])
def test_the_collected_roster_answers_as_the_columns_do(extract: pa.Table, batch_rows: int) -> None:
    whole = Roster.from_table(extract)
    hashed = _collected(extract, batch_rows)
    assert hashed.columns == whole.columns and hashed.columns.emails and hashed.columns.names
    q = _queries(extract)
    for ask in ("ids_among", "names_among", "contacts_among"):
        expected = sorted(getattr(whole, ask)(q).to_pylist())
        assert sorted(getattr(hashed, ask)(q).to_pylist()) == expected, ask
        assert expected  # each look-up has hits to agree on
    # the hashes take 8 bytes a value (a phone is kept as written and as its digits): less than the text
    text = sum(extract.column(c).nbytes for c in whole.columns.all())
    assert 0 < hashed.nbytes < text


def test_the_scanner_built_from_the_collected_roster_redacts_alike(extract: pa.Table) -> None:
    whole = Roster.from_table(extract)
    hashed = _collected(extract, 23)
    notes = extract.column("Counselor Notes")
    # notes that write the roster's own values as exports hold them, beside the synthetic notes
    ids, emails = extract.column("Local ID").to_pylist(), extract.column("Guardian Email").to_pylist()
    phones = extract.column("Phone").to_pylist()
    planted = pa.chunked_array([pa.array(
        [f"{n} Call {p} or write {e}; ID {i}." for n, p, e, i in
         zip(notes.to_pylist(), phones, emails, ids, strict=True)], pa.string())])
    names = [extract.column(c) for c in whole.columns.names]
    a = whole.scanner().with_row_names(names)
    b = hashed.scanner().with_row_names(names)
    assert a.roster_size == b.roster_size
    for column in (notes, planted):
        assert a.redact_counted(column) == b.redact_counted(column)
        assert [(f.row, f.kind, f.start, f.end) for f in a.find(column)] == [
            (f.row, f.kind, f.start, f.end) for f in b.find(column)]
    redacted = a.redact(planted)[0].to_pylist()
    assert sum("<PHONE_NUMBER>" in r for r in redacted) > 250  # the planted values were there to find


def test_a_hash_set_never_misses_what_was_added_even_when_every_hash_collides(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    members = pa.array([f"{x:010d}" for x in rng.integers(0, 10**10, 3000)])
    others = pa.array([f"A{x:09d}" for x in rng.integers(0, 10**9, 20_000)])
    real = _strindex.hash64
    for bits in (64, 16, 0):  # 0: every value hashes alike
        mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
        monkeypatch.setattr(_strindex, "hash64", lambda v, key=None, m=mask: real(v, key) & m)
        s = HashSet()
        for at in range(0, len(members), 700):
            s.add(members.slice(at, 700))
        assert s.contains(members).all()  # a value always hashes to what it was stored as
        assert not s.contains(pa.array([None, None], pa.string())).any()
        false_rate = s.contains(others).mean()
        n = len(s)
        if bits == 64:
            assert false_rate == 0
        elif bits == 16:
            # the rate a random hash gives: n / 2**bits (so at 64 bits, 3,000 / 2**64 ~ 1.6e-16)
            assert n < len(pc.unique(members)) and abs(false_rate - n / 2**16) < 0.01
        else:
            assert n == 1 and false_rate == 1


def test_colliding_hashes_make_the_scanner_redact_more_never_less(extract: pa.Table, monkeypatch) -> None:
    real = _strindex.hash64
    planted = pa.array([f"ID {i} and {e} here" for i, e in zip(
        extract.column("Local ID").to_pylist()[4:60], extract.column("Guardian Email").to_pylist()[4:60],
        strict=True)])
    exact = _collected(extract, 50).scanner().redact(planted)[0].to_pylist()
    monkeypatch.setattr(_strindex, "hash64", lambda v, key=None: real(v, key) & np.uint64(0xF))
    colliding = _collected(extract, 50).scanner().redact(planted)[0].to_pylist()
    assert all("<" in r for r in exact)
    # every redaction of the exact scanner is still made (a collision may name another kind: an
    # address taken for an ID is still taken out)
    def spans(texts: list[str]) -> list[str]:
        return [re.sub(r"<[A-Z_]+>", "<>", t) for t in texts]

    assert spans(colliding) == spans(exact)
    stranger = pa.array(["ID L99999999 and someone@nowhere-at-all.invalid here"])
    assert "<" in _collected(extract, 50).scanner().redact(stranger)[0][0].as_py()  # a false positive


def test_paired_sets_are_the_written_and_the_formed_values_exactly() -> None:
    cells = pa.array([" a@B.org", "a@b.org", "c@d.org", "no-at", "E@F.ORG", None, "c@d.org"])
    pair = PairedHashSet(roster_email_forms)
    pair.add(cells.slice(0, 3))
    pair.add(cells.slice(3))
    pair.finish()
    asked = pa.array([" a@B.org", "a@b.org", "c@d.org", "no-at", "E@F.ORG", "e@f.org", "x@y.org", "A@B.ORG"])
    written = {" a@B.org", "a@b.org", "c@d.org", "no-at", "E@F.ORG"}
    formed = {"a@b.org", "c@d.org", "e@f.org"}
    assert pair.raw.contains(asked).tolist() == [v in written for v in asked.to_pylist()]
    assert pair.normalized.contains(asked).tolist() == [v in formed for v in asked.to_pylist()]
    assert (len(pair.raw), len(pair.normalized)) == (len(written), len(formed))
    ids = PairedHashSet(roster_id_forms)
    ids.add(pa.array(["1234", " 0012345678 ", "0012345678", "L1234567"]))
    ids.finish()
    assert len(ids.normalized) == 2 and len(ids.raw) == 4  # "1234" is too short to search notes for


def test_keyed_hashes_differ_by_key_and_equal_within_one() -> None:
    v = pa.array(["0012345678", "maria", ""])
    k1, k2 = _strindex.new_key(), _strindex.new_key()
    assert (hash64(v, k1) == hash64(v, k1)).all()
    assert not (hash64(v, k1) == hash64(v, k2)).any()
    assert not (hash64(v, k1) == hash64(v)).any()
    s1, s2 = HashSet(), HashSet()
    s1.add(v)
    s2.add(v)
    assert not np.isin(s1.hashes(), s2.hashes()).any()

