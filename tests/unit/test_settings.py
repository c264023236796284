"""PoolSettings: defaults, checks, derived values, keyword handling and immutability."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any, get_type_hints

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from poolwarden import Pool
from poolwarden._core.dbapi import LoadBalance
from poolwarden._core.settings import SETTING_NAMES, PoolOptions, PoolSettings

URL = "mysql+pymysql://root:topsecret@127.0.0.1:3306/test"

#: AsyncPool's (and Pool's) keyword defaults before the constructors took PoolSettings,
#: written out so that the test keeps meaning something once they do.
CONSTRUCTOR_DEFAULTS: dict[str, Any] = {
    "pool_size": 5,
    "max_overflow": 10,
    "timeout": 30.0,
    "connect_wait": None,
    "min_idle": 0,
    "reset": "rollback",
    "max_lifetime": "auto",
    "idle_timeout": None,
    "keepalive": "auto",
    "pre_ping": False,
    "ping_after_idle": 5.0,
    "validation_timeout": 5.0,
    "probe": True,
    "leak_threshold": None,
    "held_check_after": 1.0,
    "max_connecting": 4,
    "role": "any",
    "hosts": None,
    "load_balance_hosts": "disable",
    "dns_refresh": 30.0,
    "proxy": "auto",
}


def test_defaults_are_the_constructors() -> None:
    assert PoolSettings().options() == CONSTRUCTOR_DEFAULTS
    assert tuple(CONSTRUCTOR_DEFAULTS) == SETTING_NAMES


def test_pool_options_keys_are_the_fields() -> None:
    # PoolOptions is written out for type checkers: this keeps it in step with the fields.
    fields = [f.name for f in dataclasses.fields(PoolSettings) if f.init]
    assert set(PoolOptions.__annotations__) == set(fields)
    assert PoolOptions.__optional_keys__ == frozenset(fields)
    assert list(SETTING_NAMES) == fields


def test_pool_options_types_are_the_fields() -> None:
    # Resolved, as a type checker reads them (the annotations are strings here).
    hints = get_type_hints(PoolSettings)
    fields = {name: hints[name] for name in SETTING_NAMES}
    assert get_type_hints(PoolOptions) == fields


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, 30.0),
        ({"timeout": None}, math.inf),
        ({"timeout": 0}, 0.0),
        ({"timeout": 2}, 2.0),
    ],
)
def test_checkout_timeout(changes: dict[str, Any], expected: float) -> None:
    assert PoolSettings(**changes).checkout_timeout == expected


@pytest.mark.parametrize(("connect_wait", "expected"), [(None, 0.0), (12, 12.0), (0.5, 0.5)])
def test_connect_wait_floor(connect_wait: float | None, expected: float) -> None:
    assert PoolSettings(connect_wait=connect_wait).connect_wait_floor == expected


@pytest.mark.parametrize(
    ("held_check_after", "expected"), [(None, math.inf), (0, 0.0), (1, 1.0), (2.5, 2.5)]
)
def test_held_check_interval(held_check_after: float | None, expected: float) -> None:
    assert PoolSettings(held_check_after=held_check_after).held_check_interval == expected


@pytest.mark.parametrize(
    ("pre_ping", "ping_after_idle", "expected"),
    [
        (False, 5.0, 5.0),
        (False, 7, 7.0),
        (False, None, math.inf),
        (True, 5.0, 0.0),
        (True, None, 0.0),  # pre_ping wins: every checkout pings
    ],
)
def test_ping_interval(pre_ping: bool, ping_after_idle: float | None, expected: float) -> None:
    settings = PoolSettings(pre_ping=pre_ping, ping_after_idle=ping_after_idle)
    assert settings.ping_interval == expected


@pytest.mark.parametrize(("mode", "expected"), [("disable", False), ("random", True)])
def test_balance_random(mode: LoadBalance, expected: bool) -> None:
    assert PoolSettings(load_balance_hosts=mode).balance_random is expected


def test_values_are_stored_normalized() -> None:
    settings = PoolSettings(
        timeout=0,
        held_check_after=0,
        max_lifetime=60,
        keepalive=None,
        validation_timeout=1,
        dns_refresh=None,
        role=" Read-Write ",
        hosts=["db1:3306", "db2"],
    )
    assert settings.timeout == 0.0 and isinstance(settings.timeout, float)
    assert isinstance(settings.held_check_after, float)
    assert settings.max_lifetime == 60.0 and isinstance(settings.max_lifetime, float)
    assert isinstance(settings.validation_timeout, float)
    assert settings.role == "primary"  # libpq's word, in poolwarden's name
    assert settings.hosts == ("db1:3306", "db2")
    assert settings == PoolSettings(
        timeout=0.0,
        held_check_after=0.0,
        max_lifetime=60.0,
        keepalive=None,
        validation_timeout=1.0,
        dns_refresh=None,
        role="primary",
        hosts=("db1:3306", "db2"),
    )


#: (field, bad value, what the message says). Each setting has at least one.
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("pool_size", -1, "pool_size must be an integer >= 0, got -1"),
    ("pool_size", 2.5, "pool_size must be an integer >= 0, got 2.5"),
    ("pool_size", True, "pool_size must be an integer >= 0, got True"),
    ("pool_size", "5", "pool_size must be an integer >= 0, got '5'"),
    ("max_overflow", -3, "max_overflow must be an integer >= 0, got -3"),
    ("max_overflow", None, "max_overflow must be an integer >= 0, got None"),
    ("min_idle", -1, "min_idle must be an integer >= 0, got -1"),
    ("min_idle", 16, "min_idle must be between 0 and pool_size + max_overflow (15), got 16"),
    ("timeout", -1.0, "timeout must be a number of seconds >= 0 or None, got -1.0"),
    ("timeout", math.inf, "timeout must be a number of seconds >= 0 or None, got inf"),
    ("timeout", math.nan, "timeout must be a number of seconds >= 0 or None, got nan"),
    ("timeout", "30", "timeout must be a number of seconds >= 0 or None, got '30'"),
    ("connect_wait", 0, "connect_wait must be a number of seconds > 0 or None, got 0"),
    ("connect_wait", "1", "connect_wait must be a number of seconds > 0 or None, got '1'"),
    ("reset", "commit", "reset must be 'rollback', 'session' or None, got 'commit'"),
    ("reset", True, "reset must be 'rollback', 'session' or None, got True"),
    ("max_lifetime", 0, "max_lifetime must be 'auto', None or a number of seconds > 0"),
    ("max_lifetime", "never", "max_lifetime must be 'auto', None or a number of seconds > 0"),
    ("max_lifetime", True, "max_lifetime must be 'auto', None or a number of seconds > 0"),
    ("idle_timeout", 0, "idle_timeout must be a number of seconds > 0 or None, got 0"),
    ("idle_timeout", [1], "idle_timeout must be a number of seconds > 0 or None, got [1]"),
    ("keepalive", -5, "keepalive must be 'auto', None or a number of seconds > 0, got -5"),
    ("keepalive", "often", "keepalive must be 'auto', None or a number of seconds > 0"),
    ("pre_ping", 1, "pre_ping and probe must be True or False"),
    ("pre_ping", None, "pre_ping and probe must be True or False"),
    ("ping_after_idle", 0, "ping_after_idle must be a number of seconds > 0 or None, got 0"),
    ("ping_after_idle", "5", "ping_after_idle must be a number of seconds > 0 or None"),
    ("validation_timeout", None, "validation_timeout must be a number of seconds > 0, got None"),
    ("validation_timeout", 0, "validation_timeout must be a number of seconds > 0, got 0"),
    ("probe", "yes", "pre_ping and probe must be True or False"),
    ("leak_threshold", 0, "leak_threshold must be a number of seconds > 0 or None, got 0"),
    ("leak_threshold", -1, "leak_threshold must be a number of seconds > 0 or None, got -1"),
    ("held_check_after", -1, "held_check_after must be a number of seconds >= 0 or None"),
    ("held_check_after", "1", "held_check_after must be a number of seconds >= 0 or None"),
    ("max_connecting", 0, "max_connecting must be an integer >= 1, got 0"),
    ("max_connecting", 1.5, "max_connecting must be an integer >= 1, got 1.5"),
    ("role", "master", "role must be one of 'any', 'primary', 'standby', 'prefer-standby'"),
    ("role", None, "role must be one of 'any', 'primary', 'standby', 'prefer-standby'"),
    ("hosts", "db1", "hosts must be a non-empty list of 'host' or 'host:port' strings"),
    ("hosts", [], "hosts must be a non-empty list of 'host' or 'host:port' strings, got []"),
    ("hosts", ["db1", ""], "hosts must be a non-empty list of 'host' or 'host:port' strings"),
    ("hosts", ["db1", 2], "hosts must be a non-empty list of 'host' or 'host:port' strings"),
    ("load_balance_hosts", "round-robin", "load_balance_hosts must be one of 'disable', "),
    ("load_balance_hosts", True, "load_balance_hosts must be one of 'disable', 'random'"),
    ("dns_refresh", 0, "dns_refresh must be a number of seconds > 0 or None, got 0"),
    ("dns_refresh", "30", "dns_refresh must be a number of seconds > 0 or None, got '30'"),
    ("proxy", "haproxy", "proxy must be one of 'auto', 'pgbouncer', 'proxysql', None"),
    ("proxy", True, "proxy must be one of 'auto', 'pgbouncer', 'proxysql', None, got True"),
]


def test_every_setting_has_a_bad_value() -> None:
    assert {name for name, _, _ in BAD_VALUES} == set(SETTING_NAMES)


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES)
def test_bad_value_names_the_setting(name: str, value: Any, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        PoolSettings(**{name: value})
    text = str(info.value)
    assert expected in text
    assert name in text
    # The same through of() and replace(), the paths the constructors take.
    with pytest.raises(ValueError, match="must be"):
        PoolSettings.of("Pool", None, {name: value})
    with pytest.raises(ValueError, match="must be"):
        PoolSettings().replace(**{name: value})


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES)
def test_bad_value_message_is_the_pools(name: str, value: Any, expected: str) -> None:
    # The pool constructors' message for the same value, word for word: PoolSettings
    # took their checks over, and users (and test_config) see these messages.
    with pytest.raises(ValueError) as from_pool:
        Pool(URL, **{name: value})
    with pytest.raises(ValueError) as from_settings:
        PoolSettings(**{name: value})
    assert str(from_settings.value) == str(from_pool.value)


def test_sizes_must_allow_a_connection() -> None:
    with pytest.raises(ValueError, match=r"pool_size \+ max_overflow must be >= 1"):
        PoolSettings(pool_size=0, max_overflow=0)
    assert PoolSettings(pool_size=0, max_overflow=1).max_overflow == 1


def test_sizes_are_checked_together_on_replace() -> None:
    settings = PoolSettings(pool_size=2, max_overflow=0, min_idle=2)
    with pytest.raises(ValueError, match=r"min_idle must be between 0 and .* \(1\), got 2"):
        settings.replace(pool_size=1)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("pool_sise", "pool_size"), ("timeot", "timeout"), ("pre_pings", "pre_ping")],
)
def test_unknown_keyword_suggests_the_setting(key: str, suggestion: str) -> None:
    expected = f"Pool() got an unexpected keyword argument {key!r} (did you mean {suggestion!r}?)"
    with pytest.raises(TypeError) as info:
        PoolSettings.of("Pool", None, {key: 1})
    assert str(info.value) == expected


def test_unknown_keyword_without_a_close_match() -> None:
    with pytest.raises(TypeError) as info:
        PoolSettings.of("AsyncPool", PoolSettings(), {"pool_size": 3, "zzz": 1})
    assert str(info.value) == "AsyncPool() got an unexpected keyword argument 'zzz'"


def test_derived_fields_are_not_keywords() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'ping_interval'"):
        PoolSettings.of("Pool", None, {"ping_interval": 0.0})
    changes: dict[str, Any] = {"checkout_timeout": 1.0}
    with pytest.raises(TypeError, match=r"PoolSettings.replace\(\) got an unexpected"):
        PoolSettings().replace(**changes)


def test_of_applies_options_on_top() -> None:
    base = PoolSettings(pool_size=2, pre_ping=True)
    settings = PoolSettings.of("Pool", base, {"max_overflow": 0, "timeout": None})
    assert settings == PoolSettings(pool_size=2, pre_ping=True, max_overflow=0, timeout=None)
    assert base.max_overflow == 10  # the given settings are left as they were
    assert PoolSettings.of("Pool", None, {}) == PoolSettings()


def test_of_refuses_what_is_not_settings() -> None:
    with pytest.raises(ValueError, match="settings must be a PoolSettings or None, got"):
        PoolSettings.of("Pool", {"pool_size": 1}, {})  # type: ignore[arg-type]


def test_frozen() -> None:
    settings = PoolSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.pool_size = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ping_interval = 0.0  # type: ignore[misc]
    assert settings.pool_size == 5 and settings.ping_interval == 5.0


def test_equal_settings_hash_alike_and_pickle() -> None:
    one = PoolSettings(hosts=["a", "b"], timeout=3)
    two = PoolSettings(hosts=("a", "b"), timeout=3.0)
    assert one == two and hash(one) == hash(two)
    again = pickle.loads(pickle.dumps(one))
    assert again == one and again.checkout_timeout == 3.0
    assert "hosts=('a', 'b')" in repr(one) and "checkout_timeout" not in repr(one)


seconds = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.floats(min_value=0, max_value=1e9, exclude_min=True, allow_nan=False),
)
optional_seconds = st.none() | seconds
lifetimes = st.sampled_from(["auto", None]) | seconds


@st.composite
def valid_options(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments PoolSettings accepts, not yet normalized (ints for seconds,
    lists for hosts, libpq's role words)."""
    pool_size = draw(st.integers(0, 50))
    max_overflow = draw(st.integers(0 if pool_size else 1, 50))
    return {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "timeout": draw(st.none() | st.just(0) | seconds),
        "connect_wait": draw(optional_seconds),
        "min_idle": draw(st.integers(0, pool_size + max_overflow)),
        "reset": draw(st.sampled_from(["rollback", "session", None])),
        "max_lifetime": draw(lifetimes),
        "idle_timeout": draw(optional_seconds),
        "keepalive": draw(lifetimes),
        "pre_ping": draw(st.booleans()),
        "ping_after_idle": draw(optional_seconds),
        "validation_timeout": draw(seconds),
        "probe": draw(st.booleans()),
        "leak_threshold": draw(optional_seconds),
        "held_check_after": draw(st.none() | st.just(0.0) | seconds),
        "max_connecting": draw(st.integers(1, 64)),
        "role": draw(st.sampled_from(["any", "primary", "standby", "read-write", "read-only"])),
        "hosts": draw(st.none() | st.lists(st.text(min_size=1, max_size=8), min_size=1)),
        "load_balance_hosts": draw(st.sampled_from(["disable", "random"])),
        "dns_refresh": draw(optional_seconds),
        "proxy": draw(st.sampled_from(["auto", "pgbouncer", "proxysql", None])),
    }


@given(valid_options())
def test_valid_settings_round_trip(options: dict[str, Any]) -> None:
    settings = PoolSettings(**options)
    assert PoolSettings.of("Pool", settings, {}) == settings
    assert PoolSettings.of("Pool", None, options) == settings
    # Normalizing is idempotent: the stored values make the same settings again.
    assert PoolSettings(**settings.options()) == settings
    assert settings.replace(**settings.options()) == settings
    assert PoolSettings.of("Pool", PoolSettings(), settings.options()) == settings


@given(valid_options(), st.sampled_from(SETTING_NAMES), st.data())
def test_replace_one_field_and_back(
    options: dict[str, Any], name: str, data: st.DataObject
) -> None:
    settings = PoolSettings(**options)
    other = data.draw(valid_options())
    try:
        changed = settings.replace(**{name: other[name]})
    except ValueError:
        # Only a size may not fit the others (min_idle above the new total, say).
        assume(name not in ("pool_size", "max_overflow", "min_idle"))
        raise
    assert getattr(changed, name) == getattr(PoolSettings(**other), name)
    assert changed.replace(**{name: getattr(settings, name)}) == settings


@given(valid_options())
def test_derived_values_follow_the_settings(options: dict[str, Any]) -> None:
    s = PoolSettings(**options)
    assert s.checkout_timeout == (math.inf if s.timeout is None else s.timeout)
    assert s.connect_wait_floor == (s.connect_wait or 0.0)
    assert s.held_check_interval == (
        math.inf if s.held_check_after is None else s.held_check_after
    )
    if s.pre_ping:
        assert s.ping_interval == 0.0
    else:
        assert s.ping_interval == (math.inf if s.ping_after_idle is None else s.ping_after_idle)
    assert s.balance_random is (s.load_balance_hosts == "random")
    assert all(
        isinstance(getattr(s, name), float)
        for name in ("checkout_timeout", "connect_wait_floor", "held_check_interval")
    )
