"""spaCy, trimmed: presidio imports ``spacy`` (for its NLP-artifact types) even with the no-op NLP engine.

spaCy's compiled modules import one another from C, which PyInstaller cannot see, so every submodule is
collected -- except the ~70 language packages (only ``en`` and ``xx`` are kept: ``spacy.blank("en")``
works in the frozen app, and ``xx`` is imported by spaCy itself) and spaCy's own test suite. Data files:
configuration and small tables only, not Cython sources.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata, get_package_paths

KEEP_LANGS = {"en", "xx"}
_LANG_DIR = Path(get_package_paths("spacy")[1]) / "lang"


def _wanted(name: str) -> bool:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] == "tests":
        return False
    if len(parts) > 2 and parts[1] == "lang":
        # spacy.lang.<module> (char_classes, punctuation, ...) are shared; spacy.lang.<pkg> is a language.
        return parts[2] in KEEP_LANGS or not (_LANG_DIR / parts[2]).is_dir()
    return True


hiddenimports = collect_submodules("spacy", filter=_wanted)
datas = [
    (src, dest)
    for src, dest in collect_data_files(
        "spacy", includes=["**/*.cfg", "**/*.json", "**/*.toml", "**/*.txt", "**/*.jinja", "**/*.yml"]
    )
    if "/tests/" not in src.replace("\\", "/") and "/lang/" not in src.replace("\\", "/")
]
# Entry points (catalogue registries: spacy-legacy's and spacy-loggers' functions) live in metadata.
datas += copy_metadata("spacy") + copy_metadata("spacy-legacy") + copy_metadata("spacy-loggers")
