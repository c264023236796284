from __future__ import annotations

import pytest

from poolwarden import parse_url


def test_full_url_parts() -> None:
    url = parse_url(
        "mysql+pymysql://app:s3cr%40t@db.example:3307/shop?charset=utf8mb4&connect_timeout=5"
    )
    assert (url.dialect, url.driver, url.username, url.password) == (
        "mysql",
        "pymysql",
        "app",
        "s3cr@t",
    )
    assert (url.host, url.port, url.database) == ("db.example", 3307, "shop")
    assert url.query == {"charset": "utf8mb4", "connect_timeout": "5"}


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("mysql://u@h/db", "mysql+mysqldb"),
        ("mariadb+pymysql://u@h/db", "mysql+pymysql"),
        ("mysql+mysqlclient://u@h/db", "mysql+mysqldb"),
        ("postgresql://u@h/db", "postgresql+psycopg2"),
        ("postgres+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///file.db", "sqlite+pysqlite"),
    ],
)
def test_default_and_alias_drivers(text: str, scheme: str) -> None:
    assert parse_url(text).scheme == scheme


def test_password_never_rendered() -> None:
    url = parse_url("postgresql+psycopg://bob:hunter2@127.0.0.1/app")
    for text in (str(url), repr(url), url.render()):
        assert "hunter2" not in text
        assert "bob:***@127.0.0.1" in text
    assert "hunter2" in url.render(hide_password=False)


@pytest.mark.parametrize("key", ["password", "PASSWORD", "passwd", "pwd", "sslpassword"])
def test_password_query_options_never_rendered(key: str) -> None:
    url = parse_url(f"postgresql+psycopg://bob@127.0.0.1/app?sslmode=require&{key}=hunter2")
    for text in (str(url), repr(url), url.render()):
        assert "hunter2" not in text and f"{key}=***" in text and "sslmode=require" in text
    assert url.secrets() == {"hunter2"}
    assert f"{key}=hunter2" in url.render(hide_password=False)


@pytest.mark.parametrize("char", ["/", "#", "?"])
def test_unencoded_password_characters_are_not_echoed(char: str) -> None:
    """urllib's own message would quote part of such a password (as the port)."""
    with pytest.raises(ValueError, match=r"percent-encoded|%23") as info:
        parse_url(f"mysql+pymysql://rv:Sec{char}ret99@127.0.0.1:3306/test?passwd=zz9")
    text = str(info.value)
    assert "Sec" not in text and "ret99" not in text and "zz9" not in text


def test_sqlite_paths() -> None:
    assert parse_url("sqlite:///rel/file.db").database == "rel/file.db"
    assert parse_url("sqlite:////abs/file.db").database == "/abs/file.db"
    assert parse_url("sqlite://").database is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mysql+pymysql:/h/db", "no '://'"),
        ("oracle://u@h/db", "unknown database dialect 'oracle'"),
        ("mysql+nosuch://u@h/db", "unknown driver 'nosuch' for mysql; allowed: mysql+pymysql"),
        ("mysql+pymysql://u:pw@h:notaport/db", "port must be a number 1-65535, got 'notaport'"),
        ("mysql+pymysql://u:pw@h:99999/db", "port must be a number 1-65535"),
        ("mysql+pymysql://u@h/db?a=1&a=2", "given twice"),
        ("sqlite://host/file.db", "sqlite URLs take a path"),
    ],
)
def test_malformed_urls_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="target") as info:
        parse_url(text)
    assert fragment in str(info.value)
    assert ":pw@" not in str(info.value)
