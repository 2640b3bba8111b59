"""The treatments: one small class each, with a fit/apply split and named outputs (like scikit-learn).

``fit(column, ctx)`` learns what the treatment needs from the whole column (state ends in ``_``, e.g.
the rare categories, the small ZIP3 areas, the record codes); ``apply(column, ctx)`` returns the output
column; ``get_feature_names_out()`` names it (none for ``drop``). Everything runs over whole columns
with pyarrow.compute and numpy; the only Python loops run once per *distinct* identifier (HMAC).

Every output is text (``pa.string()``), like every input, so CSV and Parquet outputs agree.
Values a treatment cannot read (an unparseable date, a non-number in a bucketed column, a malformed
ZIP) become empty and are counted in ``notes`` (never listed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._column_rule import ColumnRule, parse_reference_date
from deid._treatment_spec import TREATMENT_SPECS
from deid.errors import PolicyError

if TYPE_CHECKING:
    from deid._secrets import Crosswalk

Column = pa.ChunkedArray | pa.Array

# HIPAA Safe Harbor: 3-digit ZIP areas with 20,000 people or fewer (2000 Census), written as "000".
RESTRICTED_ZIP3 = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)
SUPPRESSED_ZIP3 = "000"
TOKEN_HEX_CHARS = 32


def require_secret(policy: Any, treatments: Any, secret: bytes | None) -> None:
    """Refuse, in one sentence, a run whose policy needs a secret file and has none (tokens, record codes
    and date shifts are keyed by it). One rule for the in-memory and the streaming paths."""
    if policy.needs_secret and secret is None:
        needing = [rule.source for rule, t in treatments if t.needs_secret]
        raise PolicyError(
            f"{policy.name} uses record_code, token or date_shift (column '{needing[0]}'), which need a "
            "secret file.",
            "Give the secret file.",
            action="secret_file",
        )


def require_crosswalk(policy: Any, have_crosswalk: bool) -> None:
    """Refuse a run whose policy makes record codes without the crosswalk kept beside the secret file
    (where the codes are looked up, so a student keeps the same code in every release)."""
    if not have_crosswalk and any(r.treatment == "record_code" for r in policy.rules):
        raise PolicyError(
            f"{policy.name} uses record_code, which needs a crosswalk kept beside the secret file.",
            "Give the secret file.",
            action="secret_file",
        )


@dataclass
class TreatmentContext:
    """What treatments may use besides their own column: the whole input (``date_shift`` reads its
    ``by`` column), k, the secret and crosswalk, the reference date, and the text scanner."""

    table: pa.Table
    k: int = 5
    secret: bytes | None = None
    crosswalk: Crosswalk | None = None
    reference_date: dt.date = field(default_factory=dt.date.today)
    scanner_factory: Callable[[], Any] | None = None
    student_id_column: str | None = None  # date_shift's default 'by': the first coded/tokenized column
    # A secret only this provider holds (never a consortium's shared one): keys link-token dummies so a
    # record's dummies are the same in each of its releases. None: fresh random dummies.
    dummy_secret: bytes | None = None
    _keys: dict[str, bytes] = field(default_factory=dict)
    _scanner: Any = None

    def key(self, purpose: str) -> bytes:
        """The key for ``purpose`` derived from the secret (PolicyError if there is no secret)."""
        if self.secret is None:
            raise PolicyError(
                "This policy uses record_code, token or date_shift, which need a secret file.",
                "Give the secret file.",
                action="secret_file",
            )
        if purpose not in self._keys:
            from deid._secrets import derive_key

            self._keys[purpose] = derive_key(self.secret, purpose)
        return self._keys[purpose]

    def scanner(self) -> Any:
        """The TextScanner for this input (built once, on first use)."""
        if self._scanner is None:
            if self.scanner_factory is None:
                raise PolicyError("redact_text needs the text scanner, which is not available.")
            self._scanner = self.scanner_factory()
        return self._scanner


class Treatment:
    """Base class: keeps the column unchanged. Subclasses override ``fit``/``apply``."""

    name: ClassVar[str] = "keep"
    # From the one specification (deid/_treatment_spec.py), set for each subclass by its name.
    required: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ()
    needs_secret: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = TREATMENT_SPECS[cls.name]  # a KeyError here: add the treatment to TREATMENT_SPECS
        cls.required, cls.optional, cls.needs_secret = spec.required, spec.optional, spec.needs_secret

    def __init__(self, rule: ColumnRule) -> None:
        self.rule = rule
        self.params: Mapping[str, Any] = rule.params
        self.notes: list[str] = []

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        """Raise PolicyError for missing or unknown parameters; subclasses check values too."""
        for key in cls.required:
            if key not in rule.params:
                raise PolicyError(f"{where}: column '{rule.source}' ({cls.name}) needs '{key}'.")
        allowed = set(cls.required) | set(cls.optional)
        for key in rule.params:
            if key not in allowed:
                hint = f"; it takes {', '.join(sorted(allowed))}" if allowed else ""
                raise PolicyError(
                    f"{where}: column '{rule.source}' ({cls.name}) has an unknown setting '{key}'{hint}."
                )

    def get_feature_names_out(self) -> list[str]:
        """Names of the output columns (one, or none for ``drop``)."""
        out = self.rule.output_name
        return [out] if out else []

    def fit(self, column: Column, ctx: TreatmentContext) -> Treatment:
        """Learn from the whole column; returns self."""
        return self

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        """Return the treated column."""
        return column

    def fit_apply(self, column: Column, ctx: TreatmentContext) -> Column:
        """``fit`` then ``apply``."""
        return self.fit(column, ctx).apply(column, ctx)

    def _checked_id(self, column: Column) -> Column:
        """The rule's source column checked against its identifier element's shape (an SSID: 10 digits)
        before it becomes a code: refused with the rows and the fix, or zero-padded when the element or
        the rule says ``repair: zfill`` (noted). Columns that hold no such element pass as they are."""
        from deid._idshape import check_identifier, identifier_element

        el = identifier_element(self.rule.source, self.params)
        return column if el is None else check_identifier(column, el, self.rule.source, self.notes)

    def _note_unreadable(self, count: int, what: str) -> None:
        if count:
            self.notes.append(
                f"{count} value(s) of '{self.rule.source}' could not be read as {what} and were left empty"
            )


class Keep(Treatment):
    """Copy the column unchanged."""

    name = "keep"


class Drop(Treatment):
    """Leave the column out of the output."""

    name = "drop"

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        raise AssertionError("a dropped column has no output")


def normalize_ids(column: Column) -> Column:
    """Trim, collapse inner whitespace, uppercase: how identifiers are compared and hashed."""
    collapsed = pc.replace_substring_regex(column, pattern=r"\s+", replacement=" ")
    return pc.utf8_upper(pc.utf8_trim_whitespace(collapsed))


def keyed_digests(column: Column, digest: Callable[[bytes], bytes], size: int) -> tuple[np.ndarray, list]:
    """``digest(value)`` (``size`` bytes) once per distinct value: (digests as an (n, size) uint8 array,
    the dictionary-encoded chunks that index into it)."""
    # One chunk first: encoding ~200 reader chunks and unifying their dictionaries takes seconds
    # per million rows, encoding one chunk a fraction of one.
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not len(flat):
        return np.empty((0, size), np.uint8), []
    chunks = [pc.dictionary_encode(flat)]
    dictionary = chunks[0].dictionary.cast(pa.string())
    # Slice the UTF-8 bytes straight from Arrow's buffers: no str objects, no re-encoding.
    data = dictionary.buffers()[2]
    raw = data.to_pybytes() if data is not None else b""
    offsets = np.frombuffer(dictionary.buffers()[1], np.int32)[
        dictionary.offset : dictionary.offset + len(dictionary) + 1
    ]
    n = len(dictionary)
    out = np.empty((n, size), np.uint8)
    step = 65536  # bounded batches: a million small Python objects at once cost ~100 MB
    for start in range(0, n, step):
        bounds = offsets[start : min(n, start + step) + 1].tolist()
        blob = b"".join([digest(raw[a:b]) for a, b in itertools.pairwise(bounds)])
        out[start : start + len(bounds) - 1] = np.frombuffer(blob, np.uint8).reshape(-1, size)
    return out, chunks


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 (RFC 2104) under ``key`` as a fast one-argument function: the inner and outer
    hash states are keyed once and copied per message, about twice as fast as ``hmac.digest``, which
    sets up a new OpenSSL context for every call. Same output as ``hmac.digest(key, m, "sha256")``."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def mac(message: bytes, inner_copy: Callable = inner.copy, outer_copy: Callable = outer.copy) -> bytes:
        i = inner_copy()
        i.update(message)
        o = outer_copy()
        o.update(i.digest())
        return o.digest()

    return mac


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex_strings(digests: np.ndarray) -> pa.Array:
    n, size = digests.shape
    out = np.empty((n, 2 * size), np.uint8)
    out[:, 0::2] = _HEX[digests >> 4]
    out[:, 1::2] = _HEX[digests & 15]
    offsets = np.arange(0, 2 * size * n + 1, 2 * size, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes()))


def _map_back(values: pa.Array, chunks: list, out_type: pa.DataType) -> pa.ChunkedArray:
    return pa.chunked_array([pc.take(values, c.indices) for c in chunks], out_type)


class RecordCode(Treatment):
    """A random surrogate per distinct ID, kept in the crosswalk (same ID → same code on every run)."""

    name = "record_code"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        from deid._idshape import check_repair_param

        check_repair_param(rule.params, rule.source, where)

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        if ctx.crosswalk is None:
            raise PolicyError(
                f"Column '{self.rule.source}' (record_code) needs a secret file, beside which "
                "the crosswalk of codes is kept.",
                "Give the secret file.",
                action="secret_file",
            )
        namespace = str(self.params.get("namespace") or self.rule.output_name)
        ids = normalize_ids(self._checked_id(column))
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        empty = pc.equal(ids, "")
        ids = pc.if_else(empty, pa.scalar(None, pa.string()), ids)
        return pa.chunked_array([ctx.crosswalk.codes_for(namespace, ids)])


class Token(Treatment):
    """Keyed HMAC-SHA256 of the normalized value (hex, 32 characters), for linkage across partners."""

    name = "token"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        from deid._idshape import check_repair_param

        check_repair_param(rule.params, rule.source, where)
        src = rule.params.get("from")
        if src is not None and not (isinstance(src, list) and src and all(isinstance(s, str) for s in src)):
            raise PolicyError(f"{where}: 'from' of column '{rule.source}' must list input column names.")

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        key = ctx.key("token")
        sources = self.params.get("from")
        if sources:
            # A derived key (e.g. name + birth date + gender): each part normalized, dates as ISO
            # dates so partners with different date formats still agree; any empty part → no token.
            parts = [_key_part(ctx.table.column(s)) for s in sources]
            ids = pc.binary_join_element_wise(*parts, "|", null_handling="emit_null")
        else:
            ids = normalize_ids(self._checked_id(column))
        ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)
        size = TOKEN_HEX_CHARS // 2
        mac = hmac_sha256(key)
        digests, chunks = keyed_digests(ids, lambda m: mac(m)[:size], size)
        return _map_back(_hex_strings(digests), chunks, pa.string())


def _key_part(column: Column) -> Column:
    dates, bad = parse_dates(column)
    readable = int(pc.sum(pc.is_valid(dates)).as_py() or 0)
    if readable and bad <= 0.1 * (readable + bad):
        return pc.strftime(pc.cast(dates, pa.timestamp("s")), format="%Y-%m-%d")
    part = normalize_ids(column)
    return pc.if_else(pc.equal(part, ""), pa.scalar(None, pa.string()), part)


# ------------------------------------------------------------------------------------- dates

_EXCEL_EPOCH = np.datetime64("1899-12-30", "D")
_DATE_FORMATS = (  # (regex that routes a value to the format, strptime format), most common first
    (r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y"),
    (r"^\d{4}-\d{1,2}-\d{1,2}$", "%Y-%m-%d"),
    (r"^\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S"),
    (r"^\d{4}-\d{1,2}-\d{1,2}T\d{1,2}:\d{2}:\d{2}$", "%Y-%m-%dT%H:%M:%S"),
    (r"^\d{1,2}/\d{1,2}/\d{2}$", "%m/%d/%y"),
    (r"^\d{1,2}-\d{1,2}-\d{4}$", "%m-%d-%Y"),
    (r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(:\d{2})?$", "%m/%d/%Y %H:%M"),
    (r"^\d{4}/\d{1,2}/\d{1,2}$", "%Y/%m/%d"),
    (r"^\d{8}$", "%Y%m%d"),
)


def parse_dates(column: Column) -> tuple[pa.ChunkedArray, int]:
    """Parse mixed-format date text into ``date32``: ISO, US M/D/YYYY and M/D/YY, compact YYYYMMDD
    and Excel serial day numbers. Returns (dates, how many non-empty values could not be read)."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    col = pc.utf8_trim_whitespace(col)
    col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
    parts = []
    rest = col  # values no format has read yet (null once read): later formats only look at these
    null = pa.scalar(None, pa.string())
    for regex, fmt in _DATE_FORMATS:
        if rest.null_count == len(rest):
            break
        mask = pc.match_substring_regex(rest, regex)
        if not pc.any(mask).as_py():
            continue
        candidates = pc.if_else(mask, rest, null)
        if fmt == "%m/%d/%Y %H:%M":
            candidates = pc.replace_substring_regex(candidates, r" .*$", "")
            fmt = "%m/%d/%Y"
        parsed = pc.strptime(candidates, format=fmt, unit="s", error_is_null=True)
        parts.append(parsed)
        rest = pc.if_else(pc.is_valid(parsed), null, rest)
    serial_mask = pc.match_substring_regex(rest, r"^\d{5}(\.\d+)?$")
    if rest.null_count < len(rest) and pc.any(serial_mask).as_py():
        nums = pc.cast(pc.if_else(serial_mask, rest, null), pa.float64())
        days = np.floor(nums.to_numpy(zero_copy_only=False))
        valid = ~np.isnan(days) & (days >= 1) & (days <= 2958465)
        dates = _EXCEL_EPOCH + np.where(valid, days, 0).astype("timedelta64[D]")
        parts.append(
            pa.chunked_array([pa.array(dates.astype("datetime64[s]"), pa.timestamp("s"), mask=~valid)])
        )
    if parts:
        ts = pc.coalesce(*parts) if len(parts) > 1 else parts[0]
        result = pc.cast(ts, pa.date32())
    else:
        result = pa.chunked_array([pa.nulls(len(col), pa.date32())])
    unreadable = int(pc.sum(pc.and_(pc.is_valid(col), pc.is_null(result))).as_py() or 0)
    return result, unreadable


def _date_ymd(dates: Column) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    valid = pc.is_valid(dates).to_numpy(zero_copy_only=False)
    y = pc.year(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    m = pc.month(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    d = pc.day(dates).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return y, m, d, valid


DEFAULT_AGE_BANDS = tuple(range(0, 85, 5))


class GeneralizeDate(Treatment):
    """A date to its year, year-month, age in years at a reference date, or an age band."""

    name = "generalize_date"
    TARGETS = ("year", "year_month", "age", "age_band")

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        if rule.params["to"] not in cls.TARGETS:
            raise PolicyError(
                f"{where}: column '{rule.source}': 'to' must be one of {', '.join(cls.TARGETS)}."
            )
        if "reference_date" in rule.params:
            parse_reference_date(rule.params["reference_date"], f"{where}: column '{rule.source}'")
        if "edges" in rule.params:
            bands = rule.params["edges"]
            if (
                not isinstance(bands, list)
                or len(bands) < 2
                or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in bands)
                or any(a >= b for a, b in itertools.pairwise(bands))
            ):
                raise PolicyError(
                    f"{where}: column '{rule.source}': 'edges' (age bands) must be at least two "
                    f"whole numbers of years in increasing order, e.g. [0, 5, 10, 15]."
                )

    def fit(self, column: Column, ctx: TreatmentContext) -> GeneralizeDate:
        ref = self.params.get("reference_date")
        self.reference_date_ = parse_reference_date(ref, "") if ref else ctx.reference_date
        return self

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        dates, bad = parse_dates(column)
        self._note_unreadable(bad, "dates")
        to = self.params["to"]
        if to == "year":
            return pc.cast(pc.year(dates), pa.string())
        if to == "year_month":
            return pc.strftime(pc.cast(dates, pa.timestamp("s")), format="%Y-%m")
        ref = self.reference_date_
        y, m, d, valid = _date_ymd(dates)
        before_birthday = (ref.month < m) | ((ref.month == m) & (ref.day < d))
        age = ref.year - y - before_birthday.astype(np.int64)
        valid &= age >= 0
        if to == "age":
            return pa.chunked_array([pa.array(age.astype(str), pa.string(), mask=~valid)])
        bands = np.asarray(self.params.get("edges", DEFAULT_AGE_BANDS))
        labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bands)] + [f"{bands[-1]}+"]
        idx = np.searchsorted(bands, age, side="right") - 1
        valid &= idx >= 0
        out = pc.take(pa.array(labels, pa.string()), pa.array(np.where(valid, idx, 0), mask=~valid))
        return pa.chunked_array([out])


class DateShift(Treatment):
    """Shift every date of a student by the same secret number of days (±``max_days``, never 0), keyed
    by the student's ID column ``by``; intervals between a student's dates survive."""

    name = "date_shift"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        if "by" in rule.params and (not isinstance(rule.params["by"], str) or not rule.params["by"]):
            raise PolicyError(f"{where}: column '{rule.source}': 'by' must name the student ID column.")
        md = rule.params.get("max_days", 30)
        if isinstance(md, bool) or not isinstance(md, int) or not 1 <= md <= 3650:
            raise PolicyError(
                f"{where}: column '{rule.source}': 'max_days' must be a whole number from 1 to 3650."
            )

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        n = int(self.params.get("max_days", 30))
        key = ctx.key("date_shift")
        by = self.params.get("by") or ctx.student_id_column
        if not by:
            raise PolicyError(
                f"Column '{self.rule.source}' (date_shift) needs 'by', the student ID column "
                f"whose students' dates move together."
            )
        ids = normalize_ids(ctx.table.column(by))
        ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids)

        # Keyed BLAKE2b (a PRF, and faster than HMAC for a million IDs) → a uniform draw from
        # [-n, -1] ∪ [1, n]; the modulo bias over 2**64 is negligible.
        digests, chunks = keyed_digests(
            ids, lambda m: hashlib.blake2b(m, key=key, digest_size=8).digest(), 8
        )
        draws = digests.copy().view(">u8").ravel().astype(np.uint64) % np.uint64(2 * n)
        shift = draws.astype(np.int64) - n
        shift[shift >= 0] += 1
        offsets = _map_back(pa.array(shift.astype(np.int32)), chunks, pa.int32())
        dates, bad = parse_dates(column)
        self._note_unreadable(bad, "dates")
        day_numbers = pc.cast(dates, pa.int32())
        shifted = pc.cast(pc.add(day_numbers, offsets), pa.date32())
        no_id = int(pc.sum(pc.and_(pc.is_valid(dates), pc.is_null(offsets))).as_py() or 0)
        if no_id:
            self.notes.append(
                f"{no_id} date(s) of '{self.rule.source}' had no '{by}' to shift by and were left empty"
            )
        return pc.strftime(pc.cast(shifted, pa.timestamp("s")), format="%Y-%m-%d")


# ----------------------------------------------------------------------------------- numbers

_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"


def parse_numbers(column: Column) -> tuple[np.ndarray, int]:
    """Text → float64 (NaN where empty or not a number), and how many non-empty values were not numbers."""
    col = pc.utf8_trim_whitespace(column)
    # a decimal comma ("3,5", European exports with ';' delimiters) reads as a decimal point
    col = pc.replace_substring_regex(col, pattern=r"^([+-]?\d+),(\d+)$", replacement=r"\1.\2")
    ok = pc.match_substring_regex(col, _NUMBER)
    nums = pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.float64())
    values = nums.to_numpy(zero_copy_only=False).astype(np.float64)
    nonempty = pc.and_(pc.is_valid(col), pc.not_equal(col, ""))
    bad = int(pc.sum(pc.and_(nonempty, pc.invert(ok.fill_null(False)))).as_py() or 0)
    return values, bad


def _fmt(x: float) -> str:
    return f"{x:g}"


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


class Bucket(Treatment):
    """A number to its interval of ``edges`` (``[2, 3)``; the last interval is closed), with optional
    top-coding (``top``: values at or above it become ``>= top``) and bottom-coding (``bottom``: values
    below it become ``< bottom``). Values outside every interval are left empty and counted."""

    name = "bucket"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        edges = rule.params["edges"]
        if (
            not isinstance(edges, list)
            or len(edges) < 2
            or not all(_is_number(e) for e in edges)
            or any(a >= b for a, b in itertools.pairwise(edges))
        ):
            raise PolicyError(
                f"{where}: the 'edges' of column '{rule.source}' must be at least two numbers "
                f"in increasing order, e.g. [0, 1, 2, 3, 4.5]."
            )
        for key in ("top", "bottom"):
            if key in rule.params and not _is_number(rule.params[key]):
                raise PolicyError(f"{where}: '{key}' of column '{rule.source}' must be a number.")
        top, bottom = rule.params.get("top"), rule.params.get("bottom")
        if top is not None and bottom is not None and bottom >= top:
            raise PolicyError(f"{where}: 'bottom' of column '{rule.source}' must be below its 'top'.")

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        edges = np.asarray(self.params["edges"], dtype=np.float64)
        values, bad = parse_numbers(column)
        self._note_unreadable(bad, "numbers")
        labels = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(edges[:-1])]
        labels.append(f"[{_fmt(edges[-2])}, {_fmt(edges[-1])}]")
        idx = np.searchsorted(edges, values, side="right") - 1
        idx = np.where(values == edges[-1], len(edges) - 2, idx)  # the last interval is closed
        valid = ~np.isnan(values) & (idx >= 0) & (idx < len(edges) - 1)
        top, bottom = self.params.get("top"), self.params.get("bottom")
        if top is not None:
            labels.append(f">= {_fmt(top)}")
            is_top = ~np.isnan(values) & (values >= top)
            idx = np.where(is_top, len(labels) - 1, idx)
            valid |= is_top
        if bottom is not None:
            labels.append(f"< {_fmt(bottom)}")
            is_bottom = ~np.isnan(values) & (values < bottom)
            idx = np.where(is_bottom, len(labels) - 1, idx)
            valid |= is_bottom
        outside = int((~np.isnan(values) & ~valid).sum())
        if outside:
            self.notes.append(
                f"{outside} value(s) of '{self.rule.source}' fell outside the bucket edges and "
                f"were left empty"
            )
        out = pc.take(pa.array(labels, pa.string()), pa.array(np.where(valid, idx, 0), mask=~valid))
        return pa.chunked_array([out])


# -------------------------------------------------------------------------------- categories


class Zip3(Treatment):
    """A ZIP code to its first 3 digits; Safe Harbor's small ZIP3 areas, and any ZIP3 with fewer than
    k rows in this file, become ``000``. A 4-digit ZIP (Excel dropped its leading zero) is padded."""

    name = "zip3"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        _check_count(rule, "min_count", where)

    def fit(self, column: Column, ctx: TreatmentContext) -> Zip3:
        counts = pc.value_counts(pc.drop_null(self.counted(column)))
        return self.fit_counts(counts.field("values"), counts.field("counts"), ctx)

    def counted(self, column: Column) -> Column:
        """What ``fit`` counts (the ZIP3s): a streaming run counts it batch by batch."""
        return self._zip3(column)

    def fit_counts(self, values: pa.Array, counts: pa.Array, ctx: TreatmentContext) -> Zip3:
        """``fit`` from the whole file's counts of :meth:`counted` (distinct values, their counts)."""
        min_count = int(self.params.get("min_count", ctx.k))
        small = pc.filter(values, pc.less(counts, min_count))
        self.small_ = pa.concat_arrays(
            [small.cast(pa.string()), pa.array(sorted(RESTRICTED_ZIP3), pa.string())]
        )
        return self

    def _zip3(self, column: Column) -> Column:
        s = pc.utf8_trim_whitespace(column)
        s = pc.if_else(
            pc.match_substring_regex(s, r"^\d{4}(-\d{4})?$"), pc.binary_join_element_wise("0", s, ""), s
        )
        ok = pc.match_substring_regex(s, r"^\d{5}(-?\d{4})?$")
        bad = int(
            pc.sum(
                pc.and_(pc.and_(pc.is_valid(s), pc.not_equal(s, "")), pc.invert(ok.fill_null(False)))
            ).as_py()
            or 0
        )
        self._bad = bad
        return pc.if_else(ok, pc.utf8_slice_codeunits(s, 0, 3), pa.scalar(None, pa.string()))

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        z = self._zip3(column)
        self._note_unreadable(self._bad, "ZIP codes")
        return pc.if_else(pc.is_in(z, value_set=self.small_), SUPPRESSED_ZIP3, z)


def _check_count(rule: ColumnRule, key: str, where: str) -> None:
    value = rule.params.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where}: '{key}' of column '{rule.source}' must be a whole number of at least 1.")


class RecodeRare(Treatment):
    """Categories with fewer than ``min_count`` rows (default: the policy's k) become ``Other``."""

    name = "recode_rare"

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        _check_count(rule, "min_count", where)
        if "other" in rule.params and not (isinstance(rule.params["other"], str) and rule.params["other"]):
            raise PolicyError(f"{where}: 'other' of column '{rule.source}' must be a label.")

    def fit(self, column: Column, ctx: TreatmentContext) -> RecodeRare:
        counts = pc.value_counts(pc.drop_null(self.counted(column)))
        return self.fit_counts(counts.field("values"), counts.field("counts"), ctx)

    def counted(self, column: Column) -> Column:
        """What ``fit`` counts (the values themselves)."""
        return column

    def fit_counts(self, values: pa.Array, counts: pa.Array, ctx: TreatmentContext) -> RecodeRare:
        """``fit`` from the whole file's value counts (distinct values, their counts)."""
        min_count = int(self.params.get("min_count", ctx.k))
        self.rare_ = pc.filter(values, pc.less(counts, min_count))
        return self

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        other = str(self.params.get("other", "Other"))
        return pc.if_else(pc.is_in(column, value_set=self.rare_), other, column)


class RedactText(Treatment):
    """Free text with every PII finding (roster names and IDs, SSNs, emails, phones, …) replaced by a
    typed placeholder such as ``<PERSON>``."""

    name = "redact_text"
    redacted_by_kind: dict[str, int]  # pieces replaced, per scanner kind (set by apply; for the report)

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        from deid._textnorm import visible_text

        # the text as the recipient will see it: no name hidden by zero-width or look-alike characters
        col = visible_text(column)
        redacted, _changed, self.redacted_by_kind = ctx.scanner().redact_counted(col)
        return redacted


# The engine's own treatments; deid/_registry.py adds link_tokens (deid/_linktokens.py) and is the registry.
ENGINE_TREATMENTS: tuple[type[Treatment], ...] = (
    Keep,
    Drop,
    RecordCode,
    Token,
    GeneralizeDate,
    DateShift,
    Bucket,
    Zip3,
    RecodeRare,
    RedactText,
)
