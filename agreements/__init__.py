"""agreements — PathShare's trust layer: the vault, identities and partner cards, signed
agreements, the audit log, sealed packages, receipts, and the workflows the app and CLI share.

For most uses, open a vault and call a workflow::

    vault = Vault.open(path, passphrase)       # or Vault.create(path, passphrase) + create_identity(...)
    import_card(vault, "partner.json"); verify_partner(vault, fingerprint)   # after a phone check
    prepare(vault, "extract.csv", agreement_id, "release.age")               # de-identify + check + seal
    open_received(vault, "release.age", "inbox/", receipt="receipt.json")    # verify + decrypt
    vault.audit.verify(); vault.audit.export_bundle(out)                     # see docs/vault-and-audit.md

Agreements: docs/agreement-schema.md; packages: docs/package-format.md; ``run_demo`` runs it all.
"""

from agreements._agreement import Agreement, parse_agreement
from agreements._agreement_store import (
    AgreementSummary,
    agreement_status,
    amend_agreement,
    amend_agreement_from_file,
    can_amend,
    can_join,
    can_sign,
    can_terminate,
    create_agreement,
    create_agreement_from_file,
    destruction_due,
    expiring_agreements,
    export_agreement,
    import_agreement,
    join_agreement,
    list_agreements,
    require_in_force,
    sign_agreement,
    terminate_agreement,
)
from agreements._audit import (
    AuditEntry,
    AuditLog,
    AuditVerdict,
    HeldHead,
    PartnerLogProblem,
    filter_entries,
    partner_heads,
    partner_log_problems,
    verify_bundle,
    verify_checkpoint,
)
from agreements._cards import ORG_KINDS, Card
from agreements._codebook import (
    DATE_PRECISIONS,
    ELEMENT_TYPE_LABELS,
    GLOSSARY,
    TREATMENT_CHOICES,
    Codebook,
    TreatmentSetting,
    agreement_codebook,
    code_labels,
    codebook_path,
    describe_treatment,
    export_codebook,
    keep_settings,
    settings_summary,
    treatment_settings,
    write_codebook,
)
from agreements._identity import (
    age_identity,
    create_identity,
    export_age_identity,
    export_card,
    our_card,
    signing_key,
)
from agreements._partners import (
    ImportResult,
    Partner,
    find_partner,
    import_card,
    list_partners,
    revoke_partner,
    trusted_partner,
    verify_partner,
)
from agreements._profiles import (
    delete_profile,
    export_profile,
    get_profile,
    import_profile,
    list_profiles,
    profile_for_headers,
    save_profile,
)
from agreements._release_kit import is_kit_file, treatment_words
from agreements._roles import (
    ROLE_LABELS,
    ROLES,
    default_roles,
    organization_roles,
    set_organization_roles,
)
from agreements._stored_agreements import agreement_by_hash, agreement_versions, get_agreement
from agreements._vault import Vault, check_passphrase, default_vault_path, passphrase_strength
from agreements._vaultlock import identify_vault_user
from agreements.errors import (
    AgreementError,
    AuditError,
    IdentityError,
    NotAVault,
    OpenedFilesMissing,
    PackageRejected,
    PartnerError,
    VaultError,
    VaultInUse,
    WeakPassphrase,
    WrongPassphrase,
)
from deid import code_with_label  # the rule lives with the code sets (deid/_elements.py)

__all__ = [
    "DATE_PRECISIONS",
    "ELEMENT_TYPE_LABELS",
    "GLOSSARY",
    "ORG_KINDS",
    "ROLES",
    "ROLE_LABELS",
    "TREATMENT_CHOICES",
    "AgreementError",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditVerdict",
    "Card",
    "HeldHead",
    "IdentityError",
    "ImportResult",
    "NotAVault",
    "OpenedFilesMissing",
    "PackageRejected",
    "Partner",
    "PartnerError",
    "PartnerLogProblem",
    "TreatmentSetting",
    "Vault",
    "VaultError",
    "VaultInUse",
    "WeakPassphrase",
    "WrongPassphrase",
    "age_identity",
    "check_passphrase",
    "code_labels",
    "code_with_label",
    "create_identity",
    "default_roles",
    "default_vault_path",
    "describe_treatment",
    "export_age_identity",
    "export_card",
    "filter_entries",
    "find_partner",
    "identify_vault_user",
    "import_card",
    "is_kit_file",
    "keep_settings",
    "list_partners",
    "organization_roles",
    "our_card",
    "partner_heads",
    "partner_log_problems",
    "passphrase_strength",
    "revoke_partner",
    "set_organization_roles",
    "settings_summary",
    "signing_key",
    "treatment_settings",
    "treatment_words",
    "trusted_partner",
    "verify_bundle",
    "verify_checkpoint",
    "verify_partner",
]

# Agreements (agreements/_agreement.py, _agreement_store.py).
__all__ += [
    "Agreement",
    "AgreementSummary",
    "agreement_by_hash",
    "agreement_status",
    "agreement_versions",
    "amend_agreement",
    "amend_agreement_from_file",
    "can_amend",
    "can_join",
    "can_sign",
    "can_terminate",
    "create_agreement",
    "create_agreement_from_file",
    "destruction_due",
    "expiring_agreements",
    "export_agreement",
    "get_agreement",
    "import_agreement",
    "join_agreement",
    "list_agreements",
    "parse_agreement",
    "require_in_force",
    "sign_agreement",
    "terminate_agreement",
]

# Mapping profiles and codebooks (agreements/_profiles.py, _codebook.py).
__all__ += [
    "Codebook",
    "agreement_codebook",
    "codebook_path",
    "delete_profile",
    "export_codebook",
    "export_profile",
    "get_profile",
    "import_profile",
    "list_profiles",
    "profile_for_headers",
    "save_profile",
    "write_codebook",
]

# Sealed packages, receipts and destruction certificates (the format: agreements/_manifest.py; sealing:
# _seal.py; opening: _open_package.py; receipts and certificates: _receipts.py; the vault's records of
# them: _package_store.py).
from agreements._manifest import FileEntry, Manifest  # noqa: E402
from agreements._open_package import OpenedPackage, open_package  # noqa: E402
from agreements._package_store import (  # noqa: E402
    PackageRecord,
    certify_destruction,
    check_not_replayed,
    get_package,
    import_destruction_certificate,
    import_receipt,
    list_packages,
    outstanding_past_deadline,
    record_received,
    record_rejected,
    record_sent,
    resolve_package_id,
)
from agreements._receipts import (  # noqa: E402
    DestructionCertificate,
    Receipt,
    make_destruction_certificate,
    make_receipt,
    verify_destruction_certificate,
    verify_receipt,
)
from agreements._recorded import output_rule, recorded_as  # noqa: E402
from agreements._seal import seal  # noqa: E402

__all__ += [
    "DestructionCertificate",
    "FileEntry",
    "Manifest",
    "OpenedPackage",
    "PackageRecord",
    "Receipt",
    "certify_destruction",
    "check_not_replayed",
    "get_package",
    "import_destruction_certificate",
    "import_receipt",
    "list_packages",
    "make_destruction_certificate",
    "make_receipt",
    "open_package",
    "output_rule",
    "outstanding_past_deadline",
    "record_received",
    "record_rejected",
    "record_sent",
    "recorded_as",
    "resolve_package_id",
    "seal",
    "verify_destruction_certificate",
    "verify_receipt",
]

# The consortium linkage secret (agreements/_linkage_store.py) and linking two files as an audited
# workflow (agreements/_linking.py).
from agreements._linkage_store import (  # noqa: E402
    LinkageStatus,
    ensure_linkage_secret,
    export_linkage_key,
    import_linkage_key,
    linkage_secret,
    linkage_summary,
)
from agreements._linking import LinkedSource, link_files, linked_source  # noqa: E402

__all__ += [
    "LinkageStatus",
    "LinkedSource",
    "ensure_linkage_secret",
    "export_linkage_key",
    "import_linkage_key",
    "link_files",
    "linkage_secret",
    "linkage_summary",
    "linked_source",
]

# The compliance officer's queries and reports (agreements/_compliance.py, _audit_reports.py).
from agreements._audit_reports import (  # noqa: E402
    audit_report_html,
    check_bundle,
    verify_log,
    write_audit_csv,
    write_checkpoint,
)
from agreements._compliance import (  # noqa: E402
    Dashboard,
    Disclosure,
    dashboard,
    disclosure_record,
    write_disclosures_csv,
)

__all__ += [
    "Dashboard",
    "Disclosure",
    "audit_report_html",
    "check_bundle",
    "dashboard",
    "disclosure_record",
    "verify_log",
    "write_audit_csv",
    "write_checkpoint",
    "write_disclosures_csv",
]

# The workflows the app and the CLI share (agreements/_prepare.py, _workflows.py, _demo.py).
from agreements._demo import DemoResult, run_demo  # noqa: E402
from agreements._prepare import (  # noqa: E402
    AgreementRun,
    PreparedPackage,
    SealingProblem,
    columns_left_out,
    deidentify_for_agreement,
    prepare,
    preview_under_agreement,
    sealing_problems,
)
from agreements._workflows import (  # noqa: E402
    Destruction,
    ReceivedPackage,
    ReturnedDocument,
    SealedPackage,
    Voided,
    destroy,
    import_certificate_file,
    import_receipt_file,
    import_returned_file,
    open_received,
    seal_for_agreement,
    void_package,
)

__all__ += [
    "AgreementRun",
    "DemoResult",
    "Destruction",
    "PreparedPackage",
    "ReceivedPackage",
    "ReturnedDocument",
    "SealedPackage",
    "SealingProblem",
    "Voided",
    "columns_left_out",
    "deidentify_for_agreement",
    "destroy",
    "import_certificate_file",
    "import_receipt_file",
    "import_returned_file",
    "open_received",
    "prepare",
    "preview_under_agreement",
    "run_demo",
    "seal_for_agreement",
    "sealing_problems",
    "void_package",
]

# What the app's pages and the CLI need besides the workflows: agreement terms, the agreement form's
# parsers and checks, list labels, and the constants the screens show.
from agreements._agreement import LEGAL_BASES, Element  # noqa: E402
from agreements._audit_reports import audit_choices, record_report, verdict_sentence  # noqa: E402
from agreements._cards import normalize_fingerprint  # noqa: E402
from agreements._compliance import key_conflicts, organization_names  # noqa: E402
from agreements._drafting import (  # noqa: E402
    DraftProblem,
    blank_terms,
    check_draft,
    format_code_set,
    format_parameters,
    library_elements,
    library_entry,
    parse_code_set,
    parse_parameters,
    terms_of,
)
from agreements._identity import check_identity_inputs  # noqa: E402
from agreements._list_labels import status_key, status_label  # noqa: E402
from agreements._profiles import (  # noqa: E402
    MappingProposal,
    agreement_elements,
    map_for_agreement,
    propose_mapping,
)
from agreements._recorded import RECEIVED, SENT  # noqa: E402
from agreements._vault import MIN_PASSPHRASE_SCORE  # noqa: E402

__all__ += [
    "LEGAL_BASES",
    "MIN_PASSPHRASE_SCORE",
    "RECEIVED",
    "SENT",
    "DraftProblem",
    "Element",
    "MappingProposal",
    "agreement_elements",
    "audit_choices",
    "blank_terms",
    "check_draft",
    "check_identity_inputs",
    "format_code_set",
    "format_parameters",
    "key_conflicts",
    "library_elements",
    "library_entry",
    "map_for_agreement",
    "normalize_fingerprint",
    "organization_names",
    "parse_code_set",
    "parse_parameters",
    "propose_mapping",
    "record_report",
    "status_key",
    "status_label",
    "terms_of",
    "verdict_sentence",
]

# The audit log in the users' words (agreements/_story.py).
from agreements._compliance import Overview, overview  # noqa: E402
from agreements._story import Names, StoryLine, action_label, local_time, story, story_names  # noqa: E402

__all__ += [
    "Names",
    "Overview",
    "StoryLine",
    "action_label",
    "local_time",
    "overview",
    "story",
    "story_names",
]

# Pathway outcomes: the metrics catalog on opened packages, released as protected tables.
from agreements._measures import metrics_check  # noqa: E402
from agreements._outcomes import (  # noqa: E402
    OutcomeRelease,
    ReceivedTables,
    SealedTables,
    StoredRelease,
    list_releases,
    open_outcomes,
    release_outcomes,
    seal_outcomes,
)

__all__ += [
    "OutcomeRelease",
    "ReceivedTables",
    "SealedTables",
    "StoredRelease",
    "list_releases",
    "metrics_check",
    "open_outcomes",
    "release_outcomes",
    "seal_outcomes",
]
