"""Which store the service opens: the SQLite file (the embedded default) or PostgreSQL.

``--db`` (``factory serve``, ``factory up``) takes either a file path or a ``postgresql://`` URL;
:func:`db_overrides` turns it into the settings, :func:`open_store` opens what they name and
:func:`store_label` says which in logs and banners, without the password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.settings import POSTGRES_SCHEMES, Settings
from api.store import Store


def db_overrides(db: str | None) -> dict[str, Any]:
    """Settings for a ``--db`` value: a PostgreSQL URL, or an SQLite file path."""
    if db is None:
        return {}
    if db.startswith(POSTGRES_SCHEMES):
        return {"db_url": db}
    if "://" in db:
        raise ValueError(f"--db: a file path or a postgresql:// URL, not {db[:30]!r}")
    return {"db_path": Path(db)}


def open_store(settings: Settings) -> Store:
    """Open (and create the schema of) the store the settings name; blocking."""
    if settings.db_url is not None:
        from api.store.postgres import PostgresStore  # psycopg only loaded when used

        return PostgresStore(
            settings.db_url,
            dead_letter_max_rows=settings.dead_letter_max_rows,
            alarm_history_max_rows=settings.alarm_history_max_rows,
        )
    from api.store.sqlite import SqliteStore

    return SqliteStore(
        settings.database,
        dead_letter_max_rows=settings.dead_letter_max_rows,
        alarm_history_max_rows=settings.alarm_history_max_rows,
    )


def store_label(settings: Settings) -> str:
    if settings.db_url is not None:
        from api.store.postgres import redacted

        return redacted(settings.db_url)
    return str(settings.database)


def store_has_data(state_dir: Path, db: str | None) -> bool:
    """Does the store ``--db`` names (default: the state dir's SQLite file) hold a previous run?"""
    overrides = db_overrides(db)
    url = overrides.get("db_url")
    if url is None:
        return Path(overrides.get("db_path", state_dir / "factory.db")).exists()
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass('robots') IS NOT NULL").fetchone()
            if row is None or not row[0]:
                return False
            return conn.execute("SELECT EXISTS (SELECT 1 FROM robots)").fetchone() == (True,)
    except psycopg.Error as exc:
        raise ValueError(f"--db: cannot reach {url.split('@')[-1]}: {exc}") from exc
