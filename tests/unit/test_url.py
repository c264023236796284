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
        ("mysql+pymysql://u:pw@h:notaport/db", "port must be an integer"),
        ("mysql+pymysql://u:pw@h:99999/db", "port must be an integer"),
        ("mysql+pymysql://u@h/db?a=1&a=2", "given twice"),
        ("sqlite://host/file.db", "sqlite URLs take a path"),
    ],
)
def test_malformed_urls_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="target") as info:
        parse_url(text)
    assert fragment in str(info.value)
    assert ":pw@" not in str(info.value)
