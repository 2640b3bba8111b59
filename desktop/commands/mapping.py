"""Sub-commands: map (suggested column -> element mapping), profile list|export|import|delete, elements,
codebook."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from desktop.commands._vaultargs import add_force, open_vault


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser("map", help="suggest which shared element each column of an export holds")
    p.add_argument("input", metavar="INPUT", help="the export (.csv, .xlsx or .parquet)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--agreement", metavar="ID", help="map onto this agreement's data dictionary")
    src.add_argument(
        "--elements",
        metavar="FILE.json",
        help="map onto the elements in this file (no vault needed); default: the element library",
    )
    p.add_argument("--profile", metavar="NAME", help="use this saved mapping profile instead of suggestions")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="COLUMN=ELEMENT",
        help="correct a suggestion (repeatable); COLUMN= leaves the column unmapped (dropped)",
    )
    p.add_argument("--save-profile", metavar="NAME", help="save the mapping shown as a profile in the vault")
    p.add_argument("--source-system", default="", help="the source system, stored with --save-profile")
    p.add_argument(
        "--replace", action="store_true", help="with --save-profile: replace a profile of that name"
    )
    p.add_argument("--sheet", help="the worksheet of an .xlsx file")
    p.add_argument(
        "--memory-mb",
        type=int,
        metavar="MB",
        help="read the export in batches within about this much memory (for files too large to hold)",
    )
    p.add_argument("--batch-rows", type=int, metavar="N", help="read the export N rows at a time")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_map)

    prof = sub.add_parser("profile", help="saved mapping profiles (per source system)")
    psub = prof.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    q = psub.add_parser("list", help="list saved mapping profiles")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_profile_list)
    q = psub.add_parser("show", help="print a saved profile: column -> element, recodes")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_profile_show)
    q = psub.add_parser("export", help="write a saved profile as JSON, to share with partners")
    q.add_argument("name", metavar="NAME")
    q.add_argument("out", metavar="OUT.json")
    add_force(q)
    q.set_defaults(func=cmd_profile_export)
    q = psub.add_parser("import", help="save a profile from a JSON file")
    q.add_argument("file", metavar="FILE.json")
    q.add_argument("--name", help="save it under this name instead of the file's")
    q.add_argument("--replace", action="store_true", help="replace a saved profile of the same name")
    q.set_defaults(func=cmd_profile_import)
    q = psub.add_parser("delete", help="remove a saved profile")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_profile_delete)

    el = sub.add_parser(
        "elements", help="list the element library (the building blocks of a data dictionary)"
    )
    el.add_argument(
        "--json", action="store_true", help="print the library as JSON (the elements.json format)"
    )
    el.set_defaults(func=cmd_elements)

    add_codebook_command(sub)


def add_codebook_command(sub: argparse._SubParsersAction) -> None:
    """`codebook ID --out F`: registered at the top level and as `agreement codebook`."""
    cb = sub.add_parser("codebook", help="write an agreement's codebook (.csv, .pdf, .html or .md)")
    cb.add_argument("id", metavar="ID", help="the agreement")
    cb.add_argument("--out", required=True, metavar="FILE")
    cb.add_argument("--version", type=int, help="a particular version of the agreement")
    add_force(cb)
    cb.set_defaults(func=cmd_codebook)


# ------------------------------------------------------------------------------------------ map


def cmd_map(args: argparse.Namespace) -> int:
    from agreements import propose_mapping
    from deid import ExtractScan, dictionary_elements, load_elements, validate

    vault: Any = None
    table: Any = None
    needs_vault = bool(args.agreement or args.profile or args.save_profile)
    try:
        if needs_vault:
            vault = open_vault(args)
        if args.agreement:
            from agreements import get_agreement

            agreement = get_agreement(vault, args.agreement)
            elements = dictionary_elements(agreement.body.get("elements") or [])
            dictionary = f"agreement {agreement.id} ({agreement.title})"
        elif args.elements:
            elements = load_elements(args.elements)
            dictionary = f"the elements in {Path(args.elements).name}"
        else:
            elements = load_elements()
            dictionary = "the PathShare element library"

        # The same proposal the app's Map step shows (a saved profile whose headers match is looked
        # for only against an agreement's dictionary).
        proposal = propose_mapping(
            vault,
            args.input,
            elements,
            profile=args.profile,
            match_saved=bool(args.agreement),
            sheet=args.sheet,
            name=args.save_profile or "suggested",
            source_system=args.source_system,
            memory_mb=args.memory_mb,
            batch_rows=args.batch_rows,
        )
        table, suggestions = proposal.table, proposal.suggestions
        profile, how = proposal.profile, proposal.how
        if args.set:
            how = _apply_corrections(profile, args.set, table, elements, suggestions, how)
        # read in batches (--memory-mb): the same checks, pass by pass over the file
        findings = table.validate(profile, elements) if isinstance(table, ExtractScan) else validate(
            table, profile, elements
        )
        if args.save_profile and vault is not None:
            from agreements import save_profile

            profile.name = args.save_profile
            profile.source_system = args.source_system or profile.source_system
            save_profile(vault, profile, replace=args.replace)
    finally:
        if vault is not None:
            vault.close()
        if isinstance(table, ExtractScan):
            table.close()  # the copy of the extract it read batches from

    result = _map_result(
        args.input, table.num_rows, dictionary, suggestions, profile, how, elements, findings
    )
    result["repairs"] = proposal.repairs
    result["notes"] = proposal.notes
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_map(result)
        if args.save_profile:
            print(f"\nSaved the mapping as profile '{args.save_profile}'.")
    return 0


def _apply_corrections(
    profile: Any, corrections: list[str], table: Any, elements: list[Any], suggestions: list[Any], how: str
) -> str:
    """Apply ``--set COLUMN=ELEMENT`` corrections (with recodes and date formats for the new element)."""
    from deid import ExtractScan, best_date_format, suggest_recodes
    from deid.errors import PolicyError

    streamed = isinstance(table, ExtractScan)  # a file read in batches: its values come from a pass

    by_name = {el.name: el for el in elements}
    for item in corrections:
        column, sep, element = item.partition("=")
        column, element = column.strip(), element.strip()
        if not sep or column not in table.column_names:
            raise PolicyError(f"--set {item!r}: name a column of the input, as COLUMN=ELEMENT.")
        if element and element not in by_name:
            raise PolicyError(f"--set {item!r}: the dictionary has no element called {element}.")
        for other, current in list(profile.columns.items()):
            if element and current == element and other != column:
                profile.columns[other] = None  # one column per element: the correction wins
        profile.columns[column] = element or None
        profile.derived = {e: d for e, d in profile.derived.items() if d["from"] != column}
        profile.recodes.pop(column, None)
        profile.date_formats.pop(column, None)
        el = by_name.get(element)
        if el is not None and el.code_set:
            values = table.distinct_values([column])[column] if streamed else table.column(column)
            recodes = suggest_recodes(values, el)
            if recodes:
                profile.recodes[column] = recodes
        if el is not None and el.type == "date":
            head = table.head if streamed else table
            fmt, _ = best_date_format(head.column(column).drop_null().slice(0, 2000))
            if fmt:
                profile.date_formats[column] = fmt
    return how if how != "suggested" else "suggested, corrected"


def _map_result(
    input_path: str,
    rows: int,
    dictionary: str,
    suggestions: list[Any],
    profile: Any,
    how: str,
    elements: list[Any],
    findings: list[Any],
) -> dict[str, Any]:
    by_name = {el.name: el for el in elements}
    columns = []
    for s in suggestions:  # every column of the export, in file order
        col = s.column
        entry = s.to_dict()
        element = profile.columns.get(col)
        entry["element"] = element
        entry["recodes"] = profile.recodes.get(col, {})
        entry["date_format"] = profile.date_formats.get(col)
        entry["derives"] = {el: dict(d["values"]) for el, d in profile.derived.items() if d["from"] == col}
        entry["source"] = "suggested" if how.startswith("suggested") else "profile"
        el = by_name.get(element or "")
        recodes = entry["recodes"]
        if el is not None and el.numeric_codes and recodes and all(k.isdigit() for k in recodes):
            entry["note"] = el.numeric_codes_note  # a convention, not a standard: to be confirmed
        columns.append(entry)
    mapped = set(profile.mapped.values()) | set(profile.derived)
    return {
        "input": str(input_path),
        "rows": rows,
        "dictionary": dictionary,
        "mapping": how if how.startswith("suggested") else f"{how}: {profile.name}",
        "profile": None if how.startswith("suggested") else profile.name,
        "columns": columns,
        "unmapped_columns": [c["column"] for c in columns if not c["element"]],
        "unmapped_elements": [el.name for el in elements if el.name not in mapped],
        "validation": [f.to_dict() for f in findings],
    }


def _print_map(result: dict[str, Any]) -> None:
    print(f"{result['input']}: {result['rows']} rows, mapped onto {result['dictionary']}")
    for repair in result.get("repairs") or []:
        print(f"Read with a repair: {repair}")
    for note in result.get("notes") or []:
        print(f"Note: {note}")
    print(f"Mapping: {result['mapping']}\n")
    width = max((len(c["column"]) for c in result["columns"]), default=6)
    for c in result["columns"]:
        element = c["element"] or "(not mapped: dropped)"
        score = f"{c['score']:.2f}" if c.get("score") is not None and c["source"] == "suggested" else "    "
        alts = [a["element"] for a in c.get("candidates", []) if a["element"] != c["element"]][:2]
        alt = f"   (or {', '.join(alts)})" if alts and c["source"] == "suggested" else ""
        print(f"  {c['column']:<{width}}  ->  {element:<28} {score}{alt}")
        if c["recodes"]:
            pairs = ", ".join(f"{k!r} -> {v!r}" for k, v in list(c["recodes"].items())[:8])
            more = " …" if len(c["recodes"]) > 8 else ""
            print(f"  {'':<{width}}      recode {pairs}{more}")
        if c.get("note"):
            print(f"  {'':<{width}}      note: {c['note']}")
        for derived in c.get("derives") or {}:
            print(f"  {'':<{width}}      also fills {derived} from this column's values")
    if result["unmapped_elements"]:
        print(f"\nElements with no column: {', '.join(result['unmapped_elements'])}")
    # Elements without a column were listed above; here only what needs a decision or a fix.
    shown = [
        f
        for f in result["validation"]
        if not (f["kind"] == "unmapped_required" and f["severity"] == "warning")
    ]
    if shown:
        print("\nBefore de-identifying:")
        for f in shown:
            print(f"  [{f['severity']}] {f['message']}")
    else:
        print("\nValidation: no problems found.")
    if result["profile"] is None:
        print(
            "\nCorrect a suggestion with `--set COLUMN=ELEMENT` (or `COLUMN=` to drop it), then keep the "
            "mapping for this export with `--save-profile NAME`."
        )


# -------------------------------------------------------------------------------------- profiles


def cmd_profile_list(args: argparse.Namespace) -> int:
    from agreements import list_profiles

    with open_vault(args) as vault:
        profiles = list_profiles(vault)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "source_system": p.source_system,
                        "columns": len(p.columns),
                        "mapped": len(p.mapped),
                        "signature": p.signature,
                    }
                    for p in profiles
                ],
                indent=2,
            )
        )
        return 0
    if not profiles:
        print("No mapping profiles are saved yet; save one with `pathshare map INPUT --save-profile NAME`.")
        return 0
    for p in profiles:
        system = f" ({p.source_system})" if p.source_system else ""
        print(f"{p.name}{system}: {len(p.mapped)} of {len(p.columns)} columns mapped")
    return 0


def cmd_profile_show(args: argparse.Namespace) -> int:
    from agreements import get_profile

    with open_vault(args) as vault:
        profile = get_profile(vault, args.name)
    if args.json:
        print(profile.to_json(), end="")
        return 0
    system = f" ({profile.source_system})" if profile.source_system else ""
    print(f"{profile.name}{system}")
    width = max((len(c) for c in profile.columns), default=6)
    for column, element in profile.columns.items():
        print(f"  {column:<{width}}  ->  {element or '(not mapped: dropped)'}")
        recodes = profile.recodes.get(column)
        if recodes:
            print(f"  {'':<{width}}      recode " + ", ".join(f"{k!r} -> {v!r}" for k, v in recodes.items()))
    for element, rule in profile.derived.items():
        print(f"  {element} is filled from {rule['from']!r}")
    return 0


def cmd_profile_export(args: argparse.Namespace) -> int:
    from agreements import export_profile

    with open_vault(args) as vault:
        profile = export_profile(vault, args.name, args.out, force=args.force)
    print(f"Wrote the mapping profile '{profile.name}' to {args.out}.")
    return 0


def cmd_profile_import(args: argparse.Namespace) -> int:
    from agreements import import_profile

    with open_vault(args) as vault:
        profile = import_profile(vault, args.file, name=args.name, replace=args.replace)
    print(f"Saved the mapping profile '{profile.name}' ({len(profile.mapped)} columns mapped).")
    return 0


def cmd_profile_delete(args: argparse.Namespace) -> int:
    from agreements import delete_profile

    with open_vault(args) as vault:
        delete_profile(vault, args.name)
    print(f"Deleted the mapping profile '{args.name}'.")
    return 0


# -------------------------------------------------------------------------------------- elements


def cmd_elements(args: argparse.Namespace) -> int:
    from deid import load_elements

    elements = load_elements()
    if args.json:
        print(json.dumps({"elements": [el.to_dict() for el in elements]}, indent=2, ensure_ascii=False))
        return 0
    width = max(len(el.name) for el in elements)
    for el in elements:
        codes = f"  [{', '.join(sorted(el.codes))}]" if 0 < len(el.codes) <= 8 else ""
        print(f"{el.name:<{width}}  {el.type:<8} {el.label}{codes}")
    print(
        f"\n{len(elements)} elements; `pathshare elements --json` for descriptions, CEDS names and synonyms."
    )
    return 0


# -------------------------------------------------------------------------------------- codebook


def cmd_codebook(args: argparse.Namespace) -> int:
    from agreements import codebook_path, export_codebook, get_agreement
    from desktop.pdf import html_to_pdf

    # A wrong file name (or an existing file without --force) is refused before the passphrase is asked.
    out = codebook_path(args.out, pdf=True, force=args.force)
    with open_vault(args) as vault:
        book = export_codebook(
            vault, args.id, out, version=args.version, render_pdf=html_to_pdf, force=args.force
        )
        agreement = get_agreement(vault, args.id, args.version)
    print(f"Wrote the codebook of agreement {agreement.id} ({len(book.rows)} elements) to {out}.")
    return 0
