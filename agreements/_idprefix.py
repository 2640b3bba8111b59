"""What a user typed for an id: the full id or a unique prefix of at least 4 characters — one rule for
agreements and packages (and whatever else is named by id)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from deid.errors import PathShareError

MIN_PREFIX = 4


def match_id(
    text: str,
    candidates: Callable[[str], Iterable[str]],
    *,
    noun: str,
    missing: str,
    error: type[PathShareError],
    list_action: str,
) -> str:
    """The one id ``text`` names among ``candidates(text)`` (the ids equal to it or starting with it).
    ``noun`` ("agreement", "package") words the refusals; ``missing`` is the sentence when none is found
    ("{text}" in it stands for what was typed);
    ``list_action`` the step that lists them (the hint's action)."""
    text = text.strip().lower()
    listed = f"The list of {noun}s shows them."
    if not text:
        raise error(f"No {noun} id was given.", listed, action=list_action)
    if len(text) < MIN_PREFIX:
        article = "an" if noun[:1] in "aeiou" else "a"
        raise error(
            f"{text!r} is too short to name {article} {noun}; "
            f"give at least {MIN_PREFIX} characters of its id."
        )
    ids = sorted(set(candidates(text)))
    if text in ids:
        return text
    if not ids:
        raise error(missing.replace("{text}", text), listed, action=list_action)
    if len(ids) > 1:
        raise error(f"{text} names more than one {noun}; give more characters of the id.")
    return str(ids[0])
