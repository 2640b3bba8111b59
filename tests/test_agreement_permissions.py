"""Who may sign, amend, terminate or join an agreement: library rules (agreements.can_*) that the
Agreements page asks instead of deciding itself (issue 15)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agreements import can_amend, can_join, can_sign, can_terminate

US, THEM = "US-FP", "THEM-FP"


def _agreement(*, parties=(US, THEM), joined=(), signed=(), general_offer=False):
    named = [SimpleNamespace(fingerprint=f) for f in parties]
    everyone = {f: SimpleNamespace(fingerprint=f) for f in (*parties, *joined)}
    return SimpleNamespace(
        terms=SimpleNamespace(parties=named),
        party=everyone.get,
        signed_by=lambda f: f in signed,
        signatures=list(signed),
        general_offer=general_offer,
    )


@pytest.mark.parametrize(
    ("agreement", "status", "allowed"),
    [
        (_agreement(), "draft", True),
        (_agreement(signed=[THEM]), "proposed", True),
        (_agreement(signed=[US]), "proposed", False),  # signed already
        (_agreement(parties=(THEM,)), "draft", False),  # not ours
        (_agreement(parties=(THEM,), joined=(US,)), "executed", False),  # a joinder is not a signature here
        (_agreement(), "expired", False),
        (_agreement(), "terminated", False),
        (_agreement(), "superseded", False),
    ],
)
def test_can_sign(agreement, status, allowed):
    assert can_sign(agreement, status, US) is allowed


def test_can_amend_only_the_latest_version_of_our_own_agreement_not_terminated():
    a = _agreement()
    assert all(can_amend(a, s, US, latest=True) for s in ("draft", "proposed", "executed", "expired"))
    assert not can_amend(a, "draft", US, latest=False)
    assert not can_amend(a, "terminated", US, latest=True)
    assert not can_amend(_agreement(parties=(THEM,)), "draft", US, latest=True)


def test_can_terminate_a_signed_agreement_of_ours_once():
    assert can_terminate(_agreement(signed=[US, THEM]), "executed", US)
    assert not can_terminate(_agreement(), "draft", US)  # nothing signed: nothing to end
    assert not can_terminate(_agreement(signed=[US, THEM]), "terminated", US)
    assert not can_terminate(_agreement(parties=(THEM,), signed=[THEM]), "executed", US)


def test_can_join_a_general_offer_in_force_that_does_not_name_us():
    offer = _agreement(parties=(THEM,), signed=[THEM], general_offer=True)
    assert can_join(offer, True, US)
    assert not can_join(offer, False, US)
    assert not can_join(_agreement(parties=(THEM,), signed=[THEM]), True, US)  # not an offer
    assert not can_join(_agreement(signed=[US, THEM], general_offer=True), True, US)  # a party already
