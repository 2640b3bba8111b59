"""The disclosure-control search on a table of classes (issue 18: the generalization search of a file read
in batches): each distinct combination of the quasi-identifiers' and sensitive elements' values, with
its number of rows as a weight, gives the very result the rows give — levels, suppression, k, l, t,
risks, group losses, candidates — and the released values of each class are those of its rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_disclosure import QIS, _hierarchies, _synthetic

from deid import SUPPRESSED_COLUMN, CheckFailed, Disclosure, protect_microdata


def _classes(table: pa.Table, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
    grouped = table.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
    return grouped.select(columns), grouped.column("count_all").to_numpy().astype(np.int64)


def _result(r) -> dict:
    """The result, its groups and warnings in a fixed order (they follow the order values first appear
    in, which a table of classes does not keep)."""
    d = r.to_dict()
    d["search"].pop("seconds")
    d["groups"] = sorted(d["groups"], key=lambda g: (g["attribute"], g["group"]))
    d["warnings"] = sorted(d["warnings"])
    return d


@pytest.mark.parametrize("messy", [False, True])
@pytest.mark.parametrize(
    ("sensitive", "l_value", "l_kind", "t"),
    [((), None, "distinct", None), (("iep", "el"), 2, "distinct", None), (("el",), 2, "entropy", 0.4)],
)
def test_a_table_of_classes_gives_what_the_rows_give(messy, sensitive, l_value, l_kind, t):
    table = _synthetic(n=3000, seed=5, messy=messy)
    rules = Disclosure(hierarchies=_hierarchies(), sensitive=sensitive, l=l_value, l_kind=l_kind, t=t)
    out, whole = protect_microdata(table, QIS, 5, rules)
    classes, counts = _classes(table, [*QIS, *sensitive])
    assert len(counts) < table.num_rows and counts.max() >= 2  # classes of several rows
    out_c, weighted = protect_microdata(classes, QIS, 5, rules, weights=counts)
    assert _result(weighted) == _result(whole)
    assert weighted.rows == table.num_rows and (whole.rows_suppressed or whole.removed)
    # every row gets its class's released values: the same release, row for row (order aside)
    keep = [c for c in out.column_names if c in out_c.column_names]
    expanded = out_c.select(keep).take(pa.array(np.repeat(np.arange(len(counts)), counts)))
    by_rows = out.select(keep)
    order = [(c, "ascending") for c in keep]
    assert pc.take(expanded, pc.sort_indices(expanded, order)).to_pylist() == pc.take(
        by_rows, pc.sort_indices(by_rows, order)
    ).to_pylist()
    assert SUPPRESSED_COLUMN in keep


def test_weights_count_toward_k_and_the_row_count():
    table = pa.table({"a": ["x", "y"], "b": ["1", "2"]})
    with pytest.raises(CheckFailed, match="only 4 rows, fewer than k = 5"):
        protect_microdata(table, ["a", "b"], 5, Disclosure(), weights=np.array([2, 2]))
    out, r = protect_microdata(table, ["a", "b"], 5, Disclosure(), weights=np.array([5, 7]))
    assert (r.rows, r.k_achieved, r.rows_suppressed) == (12, 5, 0) and out.num_rows == 2
