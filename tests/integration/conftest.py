"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.test_drivers import admin


@pytest.fixture
def table(db_url: str) -> Iterator[str]:
    """A fresh table ``(id INT PRIMARY KEY)`` on the server of ``db_url``, dropped after."""
    name = f"pw_test_{uuid.uuid4().hex[:10]}"
    with admin(db_url) as adm:
        cur = adm.cursor()
        cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY)")
    yield name
    with admin(db_url) as adm:
        adm.cursor().execute(f"DROP TABLE {name}")
