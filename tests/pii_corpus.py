"""Public labelled PII corpora and a reviewer's scoring, shared by the regression test and the benchmark.

The corpora live under ``tests/corpora`` with their licences (see the README there):

- ``wnut17``: WNUT 2017 emerging entities (CC-BY 4.0) — person names in informal English. ``dev`` was
  used while developing; ``train`` was held out.
- ``presidio``: presidio-research's ``synth_dataset_v2.json`` (MIT) — sentences with names, street
  addresses, phones, e-mails, cards, IBANs, SSNs, IPs and driver's licences. Rows with an even index
  were used while developing; rows with an odd index were held out.

Scoring is a reviewer's: a labelled span is *caught* only if none of its letters and digits survive,
whatever kind the detector gave it (what matters is that it is gone). Precision per type: the share of
the detector's spans of that type that overlap a labelled span of the same type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

CORPORA = Path(__file__).resolve().parent / "corpora"

# corpus label → the type scored; labels not listed are not PII we score (organizations, dates, …) but
# stay in the corpus, so a detection on them counts against precision.
_LABELS = {
    "person": "PERSON",
    "PERSON": "PERSON",
    "STREET_ADDRESS": "ADDRESS",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "US_DRIVER_LICENSE": "DRIVER_LICENSE",
}
#: the scored types, in table order
TYPES = ("PERSON", "ADDRESS", "PHONE", "EMAIL", "CREDIT_CARD", "IBAN", "SSN", "IP", "DRIVER_LICENSE")

# a detector's kind → the scored type (PathShare's kinds and presidio's entity types)
_PREDICTED = {
    "PERSON": "PERSON",
    "ADDRESS": "ADDRESS",
    "LOCATION": "ADDRESS",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "US_ITIN": "SSN",
    "IP_ADDRESS": "IP",
    "DRIVER_LICENSE": "DRIVER_LICENSE",
    "US_DRIVER_LICENSE": "DRIVER_LICENSE",
}


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (label as in the corpus, start, end)


def load(corpus: str, part: str) -> list[Sample]:
    """``load("wnut17", "dev"|"train")`` or ``load("presidio", "dev"|"heldout")``."""
    if corpus == "wnut17":
        rows = json.loads((CORPORA / "wnut17" / f"{part}.json").read_text(encoding="utf-8"))
        return [Sample(r["text"], tuple((s["type"], s["start"], s["end"]) for s in r["spans"])) for r in rows]
    if corpus == "presidio":
        rows = json.loads(
            (CORPORA / "presidio_research" / "synth_dataset_v2.json").read_text(encoding="utf-8")
        )
        offset = {"dev": 0, "heldout": 1}[part]
        return [
            Sample(r["full_text"], tuple((s["entity_type"], s["start_position"], s["end_position"])
                                         for s in r["spans"]))
            for r in rows[offset::2]
        ]  # fmt: skip
    raise ValueError(corpus)


Detections = list[list[tuple[str, int, int]]]  # per sample: (kind, start, end)


def pathshare_detections(texts: Sequence[str], scanner=None) -> Detections:
    from deid import TextScanner

    scanner = scanner or TextScanner()
    found = scanner.find_arrays(pa.array(list(texts), pa.string()))
    out: Detections = [[] for _ in texts]
    for r, k, s, e in zip(found["row"].tolist(), found["kind"].tolist(), found["start"].tolist(),
                          found["end"].tolist(), strict=True):  # fmt: skip
        out[r].append((k, s, e))
    return out


def presidio_detections(texts: Sequence[str], analyzer=None) -> Detections:
    from deid import presidio_analyzer

    analyzer = analyzer or presidio_analyzer()
    return [[(r.entity_type, r.start, r.end) for r in analyzer.analyze(t, language="en")] for t in texts]


def score(samples: Sequence[Sample], detections: Detections) -> dict[str, dict[str, float | int | None]]:
    """Per type: labelled spans, caught, surviving share, detections, precision."""
    labelled = dict.fromkeys(TYPES, 0)
    caught = dict.fromkeys(TYPES, 0)
    predicted = dict.fromkeys(TYPES, 0)
    correct = dict.fromkeys(TYPES, 0)
    for sample, dets in zip(samples, detections, strict=True):
        covered = np.zeros(len(sample.text) + 1, dtype=bool)
        for _, s, e in dets:
            covered[s:e] = True
        for label, s, e in sample.spans:
            t = _LABELS.get(label)
            if t is None:
                continue
            labelled[t] += 1
            alnum = [i for i in range(s, e) if sample.text[i].isalnum()]
            caught[t] += bool(alnum) and bool(covered[alnum].all())
        for kind, s, e in dets:
            t = _PREDICTED.get(kind)
            if t is None:
                continue
            predicted[t] += 1
            correct[t] += any(_LABELS.get(lab) == t and s < le and ls < e for lab, ls, le in sample.spans)
    out: dict[str, dict[str, float | int | None]] = {}
    for t in TYPES:
        out[t] = {
            "labelled": labelled[t],
            "caught": caught[t],
            "surviving": round(1 - caught[t] / labelled[t], 4) if labelled[t] else None,
            "detections": predicted[t],
            "precision": round(correct[t] / predicted[t], 4) if predicted[t] else None,
        }
    return out


def table(rows: dict[str, dict[str, dict]], types: Sequence[str] = TYPES) -> str:
    """A plain-text table: one line per (corpus, detector), one column group per type."""
    head = f"{'':34}" + "".join(f"{t[:14]:>22}" for t in types)
    lines = [head, f"{'':34}" + "".join(f"{'surviving  precision':>22}" for _ in types)]
    for name, res in rows.items():
        cells = []
        for t in types:
            r = res[t]
            if not r["labelled"] and not r["detections"]:
                cells.append(f"{'-':>22}")
                continue
            surv = "-" if r["surviving"] is None else f"{100 * r['surviving']:.1f}%"
            prec = "-" if r["precision"] is None else f"{r['precision']:.2f}"
            cells.append(f"{surv + ' (' + str(r['labelled']) + ')':>13}{prec:>9}")
        lines.append(f"{name[:34]:34}" + "".join(cells))
    return "\n".join(lines)


def run(corpus: str, part: str, detector: Callable[[Sequence[str]], Detections]) -> dict[str, dict]:
    samples = load(corpus, part)
    return score(samples, detector([s.text for s in samples]))
