"""Review of the session's changes (age engine, rejected receipts, headerless reading): the problems
found, pinned as regression tests, and the boundaries checked that held up."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from partners_setup import EXPIRES

from agreements import SENT, get_package, import_receipt_file, open_received, seal_for_agreement
from agreements.errors import PackageRejected
from deid.errors import Cancelled


def _left_behind(folder: Path) -> tuple[list[str], list[str]]:
    """PathShare's helper threads still alive, and descriptors still open on files under ``folder``
    (precise, unlike counts: other tests' threads may come and go meanwhile)."""
    threads = [t.name for t in threading.enumerate() if t.name.startswith("pathshare")]
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        # The open vaults' own files (and PathShare's lock on each, held while it is open) are expected.
        if target.startswith(str(folder)) and not target.endswith((".vault", "-wal", "-shm", ".vault.lock")):
            fds.append(target)
    return threads, fds


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    return src


# ------------------------------------------------------------------------------------ receipts


def test_an_older_refusal_imported_late_does_not_erase_the_delivery(
    sides, tmp_path: Path, extract: Path
) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    # First attempt refused (the recipient's clock past expiry), then opened: two genuine receipts.
    with pytest.raises(PackageRejected):
        open_received(
            c.vault, sealed.path, tmp_path / "in", receipt=tmp_path / "r.json", today=EXPIRES + timedelta(1)
        )
    open_received(c.vault, sealed.path, tmp_path / "in2", receipt=tmp_path / "ok.json")
    import_receipt_file(d.vault, tmp_path / "ok.json")
    # The sender imports the older refusal last: refused, and the delivery (and the obligation) stand.
    with pytest.raises(PackageRejected, match="already sent a receipt saying it opened"):
        import_receipt_file(d.vault, tmp_path / "r.json")
    record = get_package(d.vault, sealed.manifest.package_id, SENT)
    assert record.delivered_to == (c.fp,) and record.refused == () and not record.closed
    assert d.last() == "package.receipt_rejected"


# ------------------------------------------------------------------ age engine: boundaries that held up


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 1 << 20, (1 << 20) + 1])
def test_chunk_boundaries_and_a_unicode_name_round_trip_without_fadvise(
    sides, tmp_path: Path, size: int, monkeypatch
) -> None:
    d, c, agreement_id = sides
    src = tmp_path / "é ü 名.csv"
    src.write_bytes(os.urandom(size))
    monkeypatch.delattr(os, "posix_fadvise", raising=False)  # as on Windows and macOS
    sealed = seal_for_agreement(d.vault, agreement_id, [("é ü 名.csv", src)], {}, tmp_path / "p.age")
    got = open_received(c.vault, sealed.path, tmp_path / "in")
    assert got.files[0].name == "é ü 名.csv" and got.files[0].read_bytes() == src.read_bytes()
    assert _left_behind(tmp_path) == ([], [])


def _cancel_after(reports: int) -> Callable[[float, str], None]:
    """A progress callback that cancels (as the app's Cancel button does) after ``reports`` reports."""
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) > reports:
            raise Cancelled("Cancelled.")

    return progress


def test_a_cancel_mid_open_leaves_no_thread_descriptor_file_or_receipt(sides, tmp_path: Path) -> None:
    d, c, agreement_id = sides
    src = tmp_path / "s.csv"
    src.write_bytes(os.urandom(5 << 20))
    sealed = seal_for_agreement(d.vault, agreement_id, [("s.csv", src)], {}, tmp_path / "p.age")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Cancelled):
        open_received(
            c.vault, sealed.path, tmp_path / "in", progress=_cancel_after(5), receipt=tmp_path / "r.json"
        )
    assert _left_behind(tmp_path) == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging folder, no receipt


# ------------------------------------------------------------------------------ headerless check


def _flags_csv(path: Path, header: list[str], rows: int = 60) -> Path:
    lines = [",".join(header)]
    for i in range(rows):
        flags = ["YES" if (i * (j + 3)) % 5 < 2 else "NO" for j in range(len(header) - 1)]
        lines.append(",".join([f"S{100000 + 7 * i}", *flags]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "header", [["student_id", "ELL", "IEP", "SPED"], ["SID", "ELL", "IEP", "FRL", "GT"], ["id", "ST", "CO"]]
)
def test_abbreviated_flag_headers_over_yes_no_are_a_header(tmp_path: Path, header: list[str]) -> None:
    """Three-letter K-12 flag names over YES/NO share the codes' shape ("AAA"): they were refused as a
    headerless file, with no way around it."""
    from deid import read_table

    table = read_table(_flags_csv(tmp_path / "flags.csv", header))
    assert table.column_names == header and table.num_rows == 60


def test_a_rejected_receipt_does_not_verify_once_altered(sides, tmp_path: Path, extract: Path) -> None:
    from agreements import make_receipt, signing_key, verify_receipt

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    key = signing_key(c.vault)
    good = make_receipt(sealed.manifest, key, c.fp, "rejected", reason="The file does not match.")
    assert verify_receipt(good, c.card.signing_key).reason == "The file does not match."
    opened = make_receipt(sealed.manifest, key, c.fp, "opened")
    altered = [
        good | {"reason": "Something else."},
        {k: v for k, v in good.items() if k != "reason"},
        {k: v for k, v in good.items() if k != "reason"} | {"result": "opened"},
        good | {"result": "opened"},
        good | {"reason": ["The file does not match."]},
        opened | {"reason": "The file does not match."},
        opened | {"result": "rejected", "reason": "x"},
    ]
    for doc in altered:
        with pytest.raises(PackageRejected, match=r"malformed|does not verify"):
            verify_receipt(doc, c.card.signing_key)


def test_a_recipient_that_refused_is_not_asked_for_a_destruction_certificate(tmp_path: Path) -> None:
    """Past the deadline with one recipient refused and the other silent: only the one that opened the
    package is listed as owing its certificate (the refusal closed the other's obligation)."""
    from partners_setup import DEADLINE, Org, execute_agreement

    from agreements import dashboard

    d = Org(tmp_path / "d.vault", "Lakeview Unified School District", "district")
    c1 = Org(tmp_path / "c1.vault", "Riverbend Community College", "college")
    c2 = Org(tmp_path / "c2.vault", "Hillcrest State University", "college")
    agreement_id = execute_agreement([d, c1, c2], [["provider"], ["recipient"], ["recipient"]], tmp_path)
    src = tmp_path / "s.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    sealed = seal_for_agreement(d.vault, agreement_id, [("s.csv", src)], {}, tmp_path / "p.age")
    with pytest.raises(PackageRejected):
        late = EXPIRES + timedelta(1)
        open_received(c1.vault, sealed.path, tmp_path / "in1", receipt=tmp_path / "r1.json", today=late)
    open_received(c2.vault, sealed.path, tmp_path / "in2", receipt=tmp_path / "r2.json")
    import_receipt_file(d.vault, tmp_path / "r1.json")
    import_receipt_file(d.vault, tmp_path / "r2.json")
    past = dashboard(d.vault, today=DEADLINE + timedelta(1)).past_deadline
    assert [p.missing for p in past] == [("Hillcrest State University",)]
    for org in (d, c1, c2):
        org.vault.close()


def test_a_signed_refusal_reason_must_be_one_printable_sentence(sides, tmp_path: Path, extract: Path) -> None:
    """A partner-signed reason is printed as it is by `receipt import` and `packages`: a line break or an
    escape sequence in it would forge a second line (or drive the terminal), so it is malformed."""
    from agreements import make_receipt, signing_key, verify_receipt
    from agreements._signing import sign_document

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    key = signing_key(c.vault)
    for reason in ("Refused.\npathshare: Package delivered.", "Refused.\x1b[2K", "x" * 501):
        doc = make_receipt(sealed.manifest, key, c.fp, "rejected", reason="placeholder")
        doc = {k: v for k, v in doc.items() if k != "signature"} | {"reason": reason}
        doc["signature"] = sign_document(key, doc)
        with pytest.raises(PackageRejected, match="malformed"):
            verify_receipt(doc, c.card.signing_key)
        (tmp_path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(PackageRejected, match="malformed"):
            import_receipt_file(d.vault, tmp_path / "r.json")
    assert get_package(d.vault, sealed.manifest.package_id, SENT).refused == ()
    # what PathShare itself writes passes: one printable sentence, cut to 500 characters
    long = make_receipt(sealed.manifest, key, c.fp, "rejected", reason="Refused. " * 100)
    assert len(verify_receipt(long, c.card.signing_key).reason) == 500


def test_a_refusal_receipt_that_cannot_be_written_does_not_hide_the_refusal(
    sides, tmp_path: Path, extract: Path, monkeypatch
) -> None:
    import agreements._workflows as workflows
    from deid.errors import OutputError

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")

    def disk_full(path: Path, doc: dict, **_options: object) -> None:
        raise OutputError(f"Cannot write {path}: No space left on device.")

    monkeypatch.setattr(workflows, "write_json_document", disk_full)
    late = EXPIRES + timedelta(1)
    message = r"expired on .* The receipt for the sender was not written: Cannot write .*r\.json"
    with pytest.raises(PackageRejected, match=message) as info:
        open_received(c.vault, sealed.path, tmp_path / "in", receipt=tmp_path / "r.json", today=late)
    assert info.value.receipt is None and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("fadvise", [True, False])
def test_early_writeback_writes_everything_with_or_without_fadvise(
    tmp_path: Path, monkeypatch, fadvise: bool
) -> None:
    from deid import EarlyWriteback, atomic_open

    hints: list[tuple[int, int]] = []
    if fadvise and hasattr(os, "posix_fadvise"):
        real = os.posix_fadvise

        def spy(fd: int, offset: int, length: int, advice: int) -> None:
            hints.append((offset, length))
            real(fd, offset, length, advice)

        monkeypatch.setattr(os, "posix_fadvise", spy)
    else:
        monkeypatch.delattr(os, "posix_fadvise", raising=False)
    data = os.urandom(300_000)
    with atomic_open(tmp_path / "out.bin") as fh:
        out = EarlyWriteback(fh, window=64 << 10)
        for i in range(0, len(data), 10_000):
            assert out.write(memoryview(data)[i : i + 10_000]) == len(data[i : i + 10_000])
    assert (tmp_path / "out.bin").read_bytes() == data
    if fadvise and hasattr(os, "posix_fadvise"):
        # contiguous windows from the start, each at least the window long
        assert hints[0][0] == 0 and all(a + n == b for (a, n), (b, _) in itertools.pairwise(hints))
        assert all(n >= 64 << 10 for _, n in hints) and len(hints) == 4
    else:
        assert hints == []


class _FullDisk:
    """EarlyWriteback's stand-in whose disk fills after 2 MiB (the write fails on a helper thread)."""

    def __init__(self, fh, window: int = 0) -> None:
        self.fh, self.written = fh, 0

    def write(self, data) -> int:
        self.written += len(data)
        if self.written > 2 << 20:
            raise OSError(28, "No space left on device")
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()

    def fileno(self) -> int:
        return self.fh.fileno()

    def close(self) -> None:
        self.fh.close()


@pytest.mark.parametrize("when", ["seal", "open", "cancel seal"])
def test_helper_thread_failures_leave_nothing_behind(sides, tmp_path: Path, monkeypatch, when: str) -> None:
    import agreements._open_package as opening
    import agreements._seal as sealing
    from deid.errors import OutputError

    d, c, agreement_id = sides
    src = tmp_path / "s.csv"
    src.write_bytes(os.urandom(6 << 20))
    sealed = None
    if when == "open":
        sealed = seal_for_agreement(d.vault, agreement_id, [("s.csv", src)], {}, tmp_path / "p.age")
    before = sorted(p.name for p in tmp_path.iterdir())
    if when == "cancel seal":
        with pytest.raises(Cancelled):
            seal_for_agreement(
                d.vault, agreement_id, [("s.csv", src)], {}, tmp_path / "q.age", progress=_cancel_after(5)
            )
    else:
        monkeypatch.setattr(sealing if sealed is None else opening, "EarlyWriteback", _FullDisk)
        with pytest.raises(OutputError, match="No space left on device"):
            if sealed is None:
                seal_for_agreement(d.vault, agreement_id, [("s.csv", src)], {}, tmp_path / "q.age")
            else:
                open_received(c.vault, sealed.path, tmp_path / "in", receipt=tmp_path / "r.json")
    assert _left_behind(tmp_path) == ([], [])
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_dashboard_says_which_recipient_refused_and_which_did_not_answer() -> None:
    """Two recipients, one refused: the Why column named only the refusal, as if both had refused."""
    from desktop.ui.dashboard_page import _why

    assert _why((), ("Riverbend",)) == "no receipt yet"
    assert _why((("Riverbend", "Expired."),), ("Riverbend",)) == "refused: Expired."
    assert _why((("Riverbend", "Expired."),), ("Riverbend", "Hillcrest")) == (
        "Riverbend refused: Expired.; Hillcrest: no receipt yet"
    )
