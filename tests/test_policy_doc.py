"""docs/policy-format.md's example policy loads and runs as the page says (issue 15: the standalone
policy format is documented, with an example that is tested)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from deid import TREATMENT_SPECS, deidentify_file, load_policy

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = DOCS / "examples" / "policy.json"


def test_the_documented_example_policy_runs(tmp_path):
    policy = load_policy(EXAMPLE)
    assert policy.k == 5 and policy.drop_unlisted
    assert {r.source for r in policy.rules} == set(json.loads(EXAMPLE.read_text(encoding="utf-8"))["columns"])
    # the page shows the example file itself
    page = (DOCS / "policy-format.md").read_text(encoding="utf-8")
    assert json.dumps(json.loads(EXAMPLE.read_text(encoding="utf-8")), sort_keys=True) in {
        json.dumps(json.loads(block.split("```", 1)[0]), sort_keys=True)
        for block in page.split("```json\n")[1:]
    }
    extract = tmp_path / "extract.csv"
    rows = [
        [f"10000000{i:02d}", f"200{i % 3}-0{1 + i % 9}-15", "FM"[i % 2], "700", f"9560{i % 2}", "3.1",
         "Doing well.", "Soto", "extra"]
        for i in range(30)
    ]  # fmt: skip
    with extract.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["SSID", "Birth Date", "Gender", "Race", "ZIP", "GPA", "Counselor Notes", "Last Name",
                         "Unlisted"])  # fmt: skip
        writer.writerows(rows)
    out = tmp_path / "shareable.csv"
    report = deidentify_file(extract, policy, out, secret_file=tmp_path / "district.key")
    with out.open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    # renamed by "as", dropped by "drop", unlisted columns left out (drop_unlisted)
    assert sorted(header) == sorted(
        ["student_code", "birth_year", "Gender", "Race", "zip3", "GPA", "Counselor Notes"]
    )
    assert report.rows_in == 30 and report.k_required == 5


def test_the_page_names_every_treatment_the_spec_has():
    page = (DOCS / "agreement-schema.md").read_text(encoding="utf-8")
    assert all(f"| `{name}` |" in page for name in TREATMENT_SPECS)


def test_the_docs_stand_alone():
    """No document, source or test refers to files outside the repository (a design note that is not
    in it, the shared folder beside the repository), and every relative link in the docs names a file
    that exists."""
    import re

    root = DOCS.parent
    outside = re.compile(r"DESIGN\.md|\.\./shared|/work/shared")
    files = [root / "README.md", *DOCS.rglob("*.md")]
    for top in ("deid", "agreements", "desktop", "tests"):
        files += [p for p in (root / top).rglob("*.py") if "__pycache__" not in p.parts]
    this = Path(__file__).resolve()
    bad = [
        str(p.relative_to(root)) for p in files if p != this and outside.search(p.read_text(encoding="utf-8"))
    ]
    assert bad == []
    broken = []
    for page in [root / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []
