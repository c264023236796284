"""The held-connection rule (poolwarden._core.held): its invariants over every combination
of inputs, and today's behaviour of both call sites, pinned by copies of their code."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poolwarden._core.held import HeldAction, held_action, needs_probe

KEEP, REPLACE, STILL_LOST = HeldAction.KEEP, HeldAction.REPLACE, HeldAction.STILL_LOST
LOST_TRANSACTION, LOST_SESSION = HeldAction.LOST_TRANSACTION, HeldAction.LOST_SESSION
NEWLY_LOST = {LOST_TRANSACTION, LOST_SESSION}


@dataclasses.dataclass(frozen=True)
class Flags:
    """One combination of :func:`held_action`'s inputs."""

    dead: bool
    open_transaction: bool
    session_changed: bool
    ending: bool
    session_outlives_rollback: bool
    already_lost: bool
    broken: bool

    def action(self) -> HeldAction:
        return held_action(**dataclasses.asdict(self))

    def but(self, **changes: bool) -> Flags:
        return dataclasses.replace(self, **changes)


FIELDS = [field.name for field in dataclasses.fields(Flags)]
ALL_FLAGS = [Flags(*values) for values in itertools.product((False, True), repeat=len(FIELDS))]
#: WardenFairy keeps no reported or failed state: its site passes both as False.
FAIRY_FLAGS = [f for f in ALL_FLAGS if not f.already_lost and not f.broken]
flags_strategy = st.builds(Flags, **{name: st.booleans() for name in FIELDS})


def check_invariants(f: Flags) -> None:
    """What must hold for any inputs, each independent of how the rule is written."""
    action = f.action()
    # Uncommitted work is never dropped unseen, nor session state that outlives this call.
    if f.open_transaction and not f.ending:
        assert action is not REPLACE
    if f.session_changed and not f.already_lost and (f.session_outlives_rollback or not f.ending):
        assert action is not REPLACE
    # A dead connection is never used again as if alive, unless the driver already failed.
    if f.dead and not f.broken:
        assert action is not KEEP
    # Once reported, every operation raises again until the borrower's rollback replaces it.
    if f.already_lost:
        assert action is (REPLACE if f.ending else STILL_LOST)
    else:
        assert action is not STILL_LOST
    # A connection not known to be dead, or one the driver already failed on, is kept.
    if not f.already_lost and (not f.dead or f.broken):
        assert action is KEEP
    # The error's reason is the transaction exactly when one was open.
    if action in NEWLY_LOST:
        assert (action is LOST_TRANSACTION) == f.open_transaction
        assert f.open_transaction or f.session_changed
    # Nothing the probe tells matters when no probe is needed, so the caller may skip it.
    if not needs_probe(already_lost=f.already_lost, broken=f.broken):
        for dead, transaction, session in itertools.product((False, True), repeat=3):
            other = f.but(dead=dead, open_transaction=transaction, session_changed=session)
            assert other.action() is action
    # Without a probe's finding, what it found with it is not read.
    if not f.dead:
        assert f.but(open_transaction=not f.open_transaction).action() is action
        assert f.but(session_changed=not f.session_changed).action() is action


@given(flags_strategy)
def test_invariants(f: Flags) -> None:
    check_invariants(f)


@given(flags_strategy)
def test_the_sites_differ_only_on_a_rollback_with_session_state_changed(f: Flags) -> None:
    ours = f.but(session_outlives_rollback=True).action()
    sqlalchemys = f.but(session_outlives_rollback=False).action()
    differs = f.dead and f.session_changed and f.ending and not f.already_lost and not f.broken
    assert (ours is not sqlalchemys) == differs
    if differs:
        # poolwarden's borrower keeps the session, so it hears of the loss; SQLAlchemy's
        # rollback may be the end of the session, so it replaces.
        assert ours in NEWLY_LOST
        assert sqlalchemys is REPLACE


@pytest.mark.parametrize("f", ALL_FLAGS, ids=str)
def test_invariants_hold_for_every_combination(f: Flags) -> None:
    check_invariants(f)


# -- today's call sites, copied as oracles --------------------------------------------------
def message_reason(open_transaction: bool) -> HeldAction:
    """The reason lost_message() gives: it reads only ``open_transaction``."""
    return LOST_TRANSACTION if open_transaction else LOST_SESSION


def pooled_connection_oracle(
    dead: bool,
    open_transaction: bool,
    session_changed: bool,
    ending: bool,
    already_lost: bool,
    broken: bool,
) -> HeldAction:
    """``AsyncPooledConnection._check_held`` before the rule moved out (``lost`` is
    ``self._lost``, ``verdict`` the probe's finding, ``self._session_changed`` the flag)."""
    lost = "reported" if already_lost else None
    if lost is not None and not ending:
        return STILL_LOST  # raise pool.engine.adapter.connection_lost(...)
    if broken and lost is None:
        return KEEP  # return self._raw
    if lost is None:
        verdict = (Exception("dead"), open_transaction) if dead else None
        if verdict is None:
            return KEEP
        _error, open_transaction = verdict
        if (open_transaction and not ending) or session_changed:
            return message_reason(open_transaction)  # pool._held_lost(..., open_transaction, ...)
    return REPLACE


def warden_fairy_oracle(
    dead: bool, open_transaction: bool, session_changed: bool, ending: bool
) -> HeldAction:
    """``WardenFairy._check`` before the rule moved out (past its guard for a detached or
    invalidated record, which is not part of the rule)."""
    verdict = (Exception("dead"), open_transaction) if dead else None
    if verdict is None:
        return KEEP  # return False
    _error, open_transaction = verdict
    if (open_transaction or session_changed) and not ending:
        return message_reason(open_transaction)  # raise lost_error(..., open_transaction, ...)
    return REPLACE  # self._replace(...); return True


@pytest.mark.parametrize("f", ALL_FLAGS, ids=str)
def test_poolwardens_proxy_keeps_its_behaviour(f: Flags) -> None:
    expected = pooled_connection_oracle(
        f.dead, f.open_transaction, f.session_changed, f.ending, f.already_lost, f.broken
    )
    assert f.but(session_outlives_rollback=True).action() is expected


@pytest.mark.parametrize("f", FAIRY_FLAGS, ids=str)
def test_sqlalchemys_proxy_keeps_its_behaviour(f: Flags) -> None:
    expected = warden_fairy_oracle(f.dead, f.open_transaction, f.session_changed, f.ending)
    assert f.but(session_outlives_rollback=False).action() is expected


def test_the_oracles_see_every_action() -> None:
    # The pinned tables are not vacuous: between them, the sites take every action.
    seen = {
        pooled_connection_oracle(*values) for values in itertools.product((False, True), repeat=6)
    }
    seen |= {warden_fairy_oracle(*values) for values in itertools.product((False, True), repeat=4)}
    assert seen == set(HeldAction)


def test_needs_probe_only_for_a_connection_in_working_order() -> None:
    assert needs_probe(already_lost=False, broken=False)
    assert not needs_probe(already_lost=True, broken=False)
    assert not needs_probe(already_lost=False, broken=True)
    assert not needs_probe(already_lost=True, broken=True)
