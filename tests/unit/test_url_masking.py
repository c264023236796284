"""A URL that does not parse is shown without anything that could be a password, and the
error still says what is wrong: through parse_url, Pool, AsyncPool and poolwarden's
create_engine / create_async_engine. (No server needed: nothing connects.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poolwarden
from poolwarden import parse_url
from poolwarden._net.url_mask import mask_url_text
from poolwarden.sqlalchemy import create_async_engine, create_engine

SECRET = "hunter2secret"

#: (shape, URL with {s} for the password, what the error must say)
SHAPES = [
    ("no scheme separator", "mysql+pymysql:/root:{s}@127.0.0.1/test", "no '://' after the scheme"),
    (
        "scheme separator typo",
        "mysql+pymysql//root:{s}@127.0.0.1/test",
        "no '://' after the scheme",
    ),
    (
        "bad port",
        "mysql+pymysql://root:{s}@127.0.0.1:x/test",
        "port must be a number 1-65535, got 'x'",
    ),
    (
        "port out of range",
        "mysql+pymysql://root:{s}@h:70000/test",
        "port must be a number 1-65535",
    ),
    ("host forgotten", "mysql+pymysql://root:{s}/test", "port must be a number 1-65535"),
    ("unbalanced [", "postgresql+psycopg://u:{s}@[::1/test", "unbalanced '[' or ']'"),
    ("unbalanced ]", "postgresql+psycopg://u:{s}@::1]:5432/test", "unbalanced '[' or ']'"),
    ("stray @", "mysql+pymysql://root:{s}@x@127.0.0.1/test", "more than one '@' before the host"),
    ("unencoded /", "mysql+pymysql://root:ab/{s}@127.0.0.1/test", "an '@' after the host"),
    ("unencoded ?", "mysql+pymysql://root:ab?{s}@127.0.0.1/test", "percent-encode"),
    ("unencoded #", "mysql+pymysql://root:ab#{s}@127.0.0.1/test", "percent-encode"),
    (
        "bad escape",
        "mysql+pymysql://root:{s}%zz@127.0.0.1/test",
        "'%' in the user name or password",
    ),
    ("bad scheme", "root:{s}@127.0.0.1://test", "the text before '://' must be dialect+driver"),
    ("query password twice", "mysql+pymysql://root@h/t?password={s}&password=x", "given twice"),
]


#: Shapes SQLAlchemy's URL grammar reads as valid: a password runs to the first '@' and
#: may hold / ? # and a stray '%'; a repeated query option becomes a list.
SQLALCHEMY_ACCEPTS = {
    "stray @",
    "unencoded /",
    "unencoded ?",
    "unencoded #",
    "bad escape",
    "query password twice",
}


def engine(url: str) -> Any:
    return create_engine(url)


def async_engine(url: str) -> Any:
    return create_async_engine(url.replace("+pymysql", "+asyncmy"))


ENTRY_POINTS: list[tuple[str, Callable[[str], Any]]] = [
    ("parse_url", parse_url),
    ("Pool", poolwarden.Pool),
    ("AsyncPool", lambda url: poolwarden.AsyncPool(url.replace("+pymysql", "+asyncmy"))),
    ("create_engine", engine),
    ("create_async_engine", async_engine),
]


def error_of(function: Callable[[str], Any], url: str) -> ValueError:
    with pytest.raises(ValueError) as info:
        function(url)
    return info.value


@pytest.mark.parametrize(("shape", "template", "says"), SHAPES, ids=[s[0] for s in SHAPES])
@pytest.mark.parametrize(("name", "function"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_each_shape_is_named_without_the_password(
    name: str, function: Callable[[str], Any], shape: str, template: str, says: str
) -> None:
    url = template.format(s=SECRET)
    if name in ("create_engine", "create_async_engine") and shape in SQLALCHEMY_ACCEPTS:
        pytest.skip("valid in SQLAlchemy's URL grammar")
    error = error_of(function, url)
    for text in (str(error), repr(error)):
        assert SECRET not in text and "hunter2" not in text
        assert "malformed database URL" in text and "***" in text
    if name in ("create_engine", "create_async_engine"):
        assert str(error).startswith("url: ")
        assert error.__context__ is None or error.__suppress_context__
        if shape == "bad scheme":
            assert "SQLAlchemy cannot parse it" in str(error)
            return
    assert says in str(error), str(error)
    # Nothing chained to it (a parser's own message) may show the password either.
    for chained in (error.__cause__, error.__context__):
        assert chained is None or SECRET not in repr(chained)


def test_the_reported_url() -> None:
    error = error_of(poolwarden.Pool, "mysql+pymysql:/root:hunter2secret@127.0.0.1/test")
    assert str(error) == (
        "target: malformed database URL 'mysql+pymysql:/root:***@127.0.0.1/test': no '://' "
        "after the scheme (e.g. 'mysql+pymysql://user:password@127.0.0.1:3306/dbname')"
    )


SECRETS = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@:/?#[]%&=;"),
    min_size=8,
    max_size=24,
).filter(lambda s: s not in "mysql+pymysql://root@127.0.0.1/test?password=")
# "root:00000001/test" is no broken URL but host "root", port 1, and "root:1,db/test" a list
# of hosts: such "secrets" are ports (a password always follows a user and precedes "@").
SECRETS = SECRETS.filter(
    lambda s: not (s.split(",")[0].isdigit() and 0 < int(s.split(",")[0]) < 65536)
)
BROKEN = st.sampled_from([template for _, template, _ in SHAPES])


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, template=BROKEN)
def test_no_generated_secret_is_echoed(secret: str, template: str) -> None:
    url = template.format(s=secret)
    for _, function in ENTRY_POINTS[:2]:
        error = error_of(function, url)
        assert secret not in str(error) and secret not in repr(error)
        assert "malformed database URL" in str(error)
    assert secret not in mask_url_text(url)


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, key=st.sampled_from(["password", "PASSWD", "pwd", "sslpassword"]))
def test_query_passwords_hidden_in_any_text(secret: str, key: str) -> None:
    for url in (f"mysql+pymysql:/u@h/db?{key}={secret}", f"mysql://u@h:x/db?a=1&{key}={secret}"):
        assert secret not in mask_url_text(url)
        assert secret not in str(error_of(parse_url, url))
