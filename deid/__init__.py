"""deid — PathShare's de-identification engine, usable on its own (e.g. in a notebook).

For most uses, call::

    from deid import load_policy, deidentify_file
    report = deidentify_file("extract.csv", load_policy("policy.json"), "out.csv", secret=b"...")

To put an export into a shared data dictionary (column names and codes of the element library)::

    from deid import read_table, suggest_mapping, MappingProfile, apply_mapping
    table = read_table("extract.csv")
    mapped = apply_mapping(table, MappingProfile.from_suggestions("my SIS", suggest_mapping(table)))

Everything else (readers and writers, treatments, PII scanning, risk) is reachable from here too;
modules whose names start with ``_`` are private.
"""

from deid.errors import (
    Cancelled,
    CheckFailed,
    InputError,
    OutputError,
    OutputExists,
    PathShareError,
    PolicyError,
)

# The engine's names load on first use (PEP 562), so `import deid.errors` — which the CLI does on
# every start — does not pull in pyarrow.
_LAZY = {
    "deid._atomic": ("OPENED_PACKAGE_MARKERS", "EarlyWriteback", "Recorded", "atomic_open", "atomic_path",
                     "check_output_path", "write_bytes_atomic"),
    "deid._engine": ("deidentify", "deidentify_file"),
    "deid._residual": ("residual_scan",),
    "deid._io": ("XLSX_MAX_ROWS", "XLSX_SHEET", "ReadInfo", "check_distinct_files", "read_table",
                 "release_order", "same_file", "write_release", "write_table"),
    "deid._column_rule": ("ColumnRule",),
    "deid._policy": ("Policy", "load_policy", "policy_from_elements"),
    "deid._report": ("MISSING_VALUES", "ColumnReport", "DeidReport", "ResidualFinding", "describe_kinds",
                     "describe_left_out", "suppression_by_group"),
    "deid._risk": ("RiskResult", "class_sizes", "k_achieved", "suppress_to_k"),
    "deid._hierarchy": ("Hierarchy", "hierarchy_from_dict"),
    "deid._riskcharts": ("risk_chart_png", "risk_figure"),
    "deid._disclosure": (
        "SUPPRESSED_COLUMN",
        "Disclosure",
        "DisclosureResult",
        "candidate_sentence",
        "protect_microdata",
        "risk_measures",
    ),
    "deid._secrets": ("Crosswalk", "crosswalk_path", "derive_key", "load_crosswalk", "load_secret",
                      "padding_key_path", "save_crosswalk"),
    "deid._treatments": ("Treatment", "TreatmentContext", "normalize_ids", "parse_dates"),
    "deid._registry": ("TREATMENTS", "make_treatment"),
    "deid._elements": ("Code", "Element", "code_with_label", "dictionary_elements", "element_library",
                       "load_elements"),
    "deid._textscan": ("Finding", "TextScanner", "installed_ner_model", "presidio_analyzer"),
    "deid._columns": ("ColumnFlag", "classify_columns"),
    "deid._roster": ("Roster", "RosterColumns", "roster_columns"),
    # Column mapping, one module per step (docs/mapping.md).
    "deid._cells": ("best_date_format",),
    "deid._recodes": ("suggest_recodes",),
    "deid._suggest": ("ColumnSuggestion", "suggest_mapping"),
    "deid._mapping_profile": ("MappingProfile", "match_profile"),
    "deid._apply_mapping": ("apply_mapping",),
    "deid._validate": ("ValidationFinding", "validate"),
    "deid._mapping_stream": ("ExtractScan", "scan_extract"),  # the same steps on a file read in batches
    "deid._stream": ("NotStreamable",),  # an input only the in-memory reader takes (reason: why)
    "deid._header_row": ("HeaderVerdict", "header_row_verdict"),
    # Linkage, one module per job (docs/linkage-threat-model.md).
    "deid._linktokens": ("LinkFields", "link_tokens"),
    "deid._linkmatch": ("LinkReport", "Links", "link_tables"),
    "deid._linkfiles": ("find_token_column", "link"),
    "deid._linkcharts": ("link_chart_data", "link_chart_png"),
    "deid._jsonread": ("parse_json", "read_json_file"),
    "deid._safetext": ("display_text", "unsafe_characters"),
    "deid._csvsafe": ("spreadsheet_safe",),
    "deid._treatment_spec": ("DATE_GRANULARITIES", "ELEMENT_TYPES", "TREATMENT_NAMES", "TREATMENT_SPECS",
                             "TreatmentSpec", "parameter_problem"),
    "deid._metrics": ("Catalog", "Metric", "catalog_markdown", "evaluate_condition", "load_catalog",
                      "metrics_named_in"),
    "deid._outcomes": ("CROSS", "MISSING_GROUP", "EarlierRelease", "OutcomeTable", "Protection", "Tables",
                       "breakdown_groups", "breakdown_parts", "check_computable", "compute_tables",
                       "differencing_check", "hidden_cells", "hidden_count", "protect", "recheck",
                       "verify_published", "with_margins"),
    "deid._outcome_files": ("OUTCOME_FORMATS", "ReleaseInfo", "write_release_files"),
    "deid._outcome_db": ("LinkedData", "count_linked", "open_linked", "row_groups", "row_outcomes"),
    "deid._spill": ("SPILL_FOLDER_PREFIX", "private_folder", "sweep_left_behind"),
    "deid._platform": ("FileAssociation", "account_name", "current_system", "display_missing",
                       "documents_dir", "documents_folder", "file_association", "heap_trimmer",
                       "is_windows", "open_flags", "posix_account_name", "process_running",
                       "restrict_permissions",
                       "sync_folder", "try_lock_file", "unlock_file", "user_data_folder",
                       "windows_account_name", "writeback_advisor"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'deid' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "MISSING_VALUES",
    "OPENED_PACKAGE_MARKERS",
    "TREATMENTS",
    "XLSX_MAX_ROWS",
    "XLSX_SHEET",
    "Cancelled",
    "CheckFailed",
    "ColumnReport",
    "ColumnRule",
    "Crosswalk",
    "DeidReport",
    "EarlyWriteback",
    "InputError",
    "OutputError",
    "OutputExists",
    "PathShareError",
    "Policy",
    "PolicyError",
    "ReadInfo",
    "Recorded",
    "ResidualFinding",
    "RiskResult",
    "Treatment",
    "TreatmentContext",
    "atomic_open",
    "atomic_path",
    "check_distinct_files",
    "check_output_path",
    "class_sizes",
    "crosswalk_path",
    "deidentify",
    "deidentify_file",
    "derive_key",
    "describe_kinds",
    "describe_left_out",
    "k_achieved",
    "load_crosswalk",
    "load_policy",
    "load_secret",
    "make_treatment",
    "normalize_ids",
    "padding_key_path",
    "parse_dates",
    "parse_json",
    "read_json_file",
    "read_table",
    "release_order",
    "residual_scan",
    "same_file",
    "save_crosswalk",
    "spreadsheet_safe",
    "suppress_to_k",
    "suppression_by_group",
    "write_bytes_atomic",
    "write_release",
    "write_table",
]

# PII detection (deid/_textscan.py, deid/_columns.py).
__all__ += [
    "ColumnFlag",
    "Finding",
    "Roster",
    "RosterColumns",
    "TextScanner",
    "classify_columns",
    "installed_ner_model",
    "presidio_analyzer",
    "roster_columns",
]

# The data dictionary and column mapping (deid/_elements.py; mapping: deid/_suggest.py, _recodes.py,
# _mapping_profile.py, _apply_mapping.py, _validate.py, _header_row.py).
__all__ += [
    "Code",
    "ColumnSuggestion",
    "Element",
    "ExtractScan",
    "HeaderVerdict",
    "MappingProfile",
    "NotStreamable",
    "ValidationFinding",
    "apply_mapping",
    "best_date_format",
    "code_with_label",
    "dictionary_elements",
    "element_library",
    "header_row_verdict",
    "load_elements",
    "match_profile",
    "policy_from_elements",
    "scan_extract",
    "suggest_mapping",
    "suggest_recodes",
    "validate",
]

# Disclosure control: generalization hierarchies and the search (deid/_hierarchy.py, deid/_disclosure.py).
__all__ += [
    "SUPPRESSED_COLUMN",
    "Disclosure",
    "DisclosureResult",
    "Hierarchy",
    "candidate_sentence",
    "hierarchy_from_dict",
    "protect_microdata",
    "risk_chart_png",
    "risk_figure",
    "risk_measures",
]

# Linkage across partners (deid/_linktokens.py, _linkmatch.py, _linkfiles.py).
__all__ += ["LinkFields", "LinkReport", "Links", "find_token_column", "link", "link_tables", "link_tokens"]
__all__ += ["link_chart_data", "link_chart_png"]  # the analyst's charts of a link run (deid/_linkcharts.py)

# The treatments' one specification (deid/_treatment_spec.py): names, parameters, element types, defaults.
__all__ += [
    "DATE_GRANULARITIES",
    "ELEMENT_TYPES",
    "TREATMENT_NAMES",
    "TREATMENT_SPECS",
    "TreatmentSpec",
    "parameter_problem",
]

# Text safe to print or show (deid/_safetext.py): the one rule for control and bidi characters.
__all__ += [
    "display_text",
    "unsafe_characters",
]

# Pathway outcomes (deid/_metrics.py, deid/_outcomes.py, deid/_outcome_db.py): the metrics catalog, the
# tables (counted on DuckDB), their protection.
__all__ += [
    "CROSS",
    "MISSING_GROUP",
    "OUTCOME_FORMATS",
    "Catalog",
    "EarlierRelease",
    "LinkedData",
    "Metric",
    "OutcomeTable",
    "Protection",
    "ReleaseInfo",
    "Tables",
    "breakdown_groups",
    "breakdown_parts",
    "catalog_markdown",
    "check_computable",
    "compute_tables",
    "count_linked",
    "differencing_check",
    "evaluate_condition",
    "hidden_cells",
    "hidden_count",
    "load_catalog",
    "metrics_named_in",
    "open_linked",
    "protect",
    "recheck",
    "row_groups",
    "row_outcomes",
    "verify_published",
    "with_margins",
    "write_release_files",
]

# The platform seam (deid/_platform.py): every difference between Linux, macOS and Windows, in one place.
__all__ += [
    "SPILL_FOLDER_PREFIX",
    "FileAssociation",
    "account_name",
    "current_system",
    "display_missing",
    "documents_dir",
    "documents_folder",
    "file_association",
    "heap_trimmer",
    "is_windows",
    "open_flags",
    "posix_account_name",
    "private_folder",
    "process_running",
    "restrict_permissions",
    "sweep_left_behind",
    "sync_folder",
    "try_lock_file",
    "unlock_file",
    "user_data_folder",
    "windows_account_name",
    "writeback_advisor",
]
