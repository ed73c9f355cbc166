"""Both stores for the store tests: a SQLite file and a schema of its own on a real PostgreSQL.

``store_backend`` is parametrized: a test using it runs once on SQLite and once on PostgreSQL.
``backend.open(**options)`` opens a store on the test's location (the same file, or the same
schema, every time: reopening is how a test checks what survived). PostgreSQL is the machine's
(127.0.0.1:5432, database ``test``, trust auth, user ``postgres`` or ``root``, or
``FACTORY_TEST_POSTGRES_URL``); each test gets a fresh schema, dropped at teardown. Unreachable,
the PostgreSQL half is skipped — a failure where ``FACTORY_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.store import Store
from api.store.postgres import PostgresStore
from api.store.sqlite import SqliteStore

BACKENDS = ("sqlite", "postgres")
CANDIDATE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


@functools.cache
def postgres_url() -> str | None:
    """The first PostgreSQL that answers, or ``None``."""
    wanted = os.environ.get("FACTORY_TEST_POSTGRES_URL")
    for url in (wanted,) if wanted else CANDIDATE_URLS:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            continue
        return url
    return None


def require_postgres() -> str:
    url = postgres_url()
    if url is None:
        tried = os.environ.get("FACTORY_TEST_POSTGRES_URL") or " or ".join(CANDIDATE_URLS)
        pytest.skip(f"no PostgreSQL at {tried}")
    return url


class PostgresSchema:
    """A fresh schema on the test PostgreSQL, dropped (with everything in it) by :meth:`drop`."""

    def __init__(self) -> None:
        self.url = require_postgres()
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.name))
            )

    @property
    def store_url(self) -> str:
        """A URL whose connections use the schema (for a ``factory serve`` subprocess)."""
        return f"{self.url}?options=-csearch_path%3D{self.name}"


class Backend:
    """Opens stores of one kind on one test's location and closes them at teardown."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "factory.db"
        self.schema = PostgresSchema() if kind == "postgres" else None
        self._opened: list[Store] = []

    def open(self, **options: Any) -> Store:
        store: Store
        if self.schema is None:
            store = SqliteStore(self.path, **options)
        else:
            store = PostgresStore(self.schema.url, schema=self.schema.name, **options)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
        if self.schema is not None:
            self.schema.drop()


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    backend = Backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def postgres_schema() -> Iterator[PostgresSchema]:
    schema = PostgresSchema()
    try:
        yield schema
    finally:
        schema.drop()
