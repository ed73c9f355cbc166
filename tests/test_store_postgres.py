"""What only the PostgreSQL store has: several writers on one database (ingest workers) storing a
message once, the identity as a unique key in the database, a clear error when the server is
away, ``--db`` choosing the store, and the service running on it end to end."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from brokers import BrokerHandle, robot_topic
from store_backends import PostgresSchema
from test_api_ingest import history, running, service_settings, telemetry, wait_rows
from test_store_sqlite import T0, query, tele

from api.settings import Settings
from api.store import Outcome, StoreUnavailable
from api.store.opening import db_overrides, open_store, store_label
from api.store.postgres import PostgresStore
from contract.topics import Channel


def test_two_workers_writing_the_same_messages_store_each_once(
    postgres_schema: PostgresSchema,
) -> None:
    """Two stores (two ``factory serve`` workers) commit overlapping batches at the same time,
    as a shared subscription's redeliveries can: every message is new exactly once."""
    workers = [PostgresStore(postgres_schema.url, schema=postgres_schema.name) for _ in range(2)]
    messages = [
        tele(f"r-{seq % 5}", seq, (T0 + seq, 0.5), (T0 + seq + 0.5, 0.6)) for seq in range(400)
    ]
    outcomes: list[list[Outcome]] = [[], []]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        # Worker 0 goes forwards, worker 1 backwards: the most lock contention there can be.
        ordered = messages if k == 0 else messages[::-1]
        try:
            for start in range(0, len(ordered), 25):
                batch = ordered[start : start + 25]
                while True:
                    try:
                        outcomes[k] += workers[k].write(batch, [])
                        break
                    except StoreUnavailable:  # a deadlock victim retries, as the consumer does
                        continue
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        new = outcomes[0].count(Outcome.NEW) + outcomes[1].count(Outcome.NEW)
        assert new == len(messages)
        assert outcomes[0].count(Outcome.DUPLICATE) + outcomes[1].count(Outcome.DUPLICATE) == 400
        rows = workers[0]._reader().execute("SELECT count(*) FROM telemetry").fetchone()
        assert rows == (800,)  # two readings per message, none twice
        assert len(query(workers[1], "r-1", T0, T0 + 1000)) == 160
    finally:
        for w in workers:
            w.close()


def test_the_identity_is_unique_in_the_database(postgres_schema: PostgresSchema) -> None:
    store = PostgresStore(postgres_schema.url, schema=postgres_schema.name)
    try:
        store.write([tele("r-1", 1, (T0, 0.5))], [])
        with pytest.raises(psycopg.errors.UniqueViolation):
            store._writer.execute(
                "INSERT INTO telemetry_messages (robot, boot, seq, ts) "
                "VALUES ('r-1', 'boot-1', 1, 0)"
            )
    finally:
        store.close()


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreUnavailable, match=r"postgresql://u@127\.0\.0\.1:1/db") as raised:
        PostgresStore("postgresql://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(raised.value)


def test_db_option_chooses_the_store(tmp_path: Path) -> None:
    assert db_overrides("postgresql://u@h/db") == {"db_url": "postgresql://u@h/db"}
    assert db_overrides(str(tmp_path / "x.db")) == {"db_path": tmp_path / "x.db"}
    with pytest.raises(ValueError, match="postgresql:// URL"):
        db_overrides("mysql://u@h/db")
    with pytest.raises(ValueError, match="starts with postgresql://"):
        Settings(db_url="sqlite:///x.db")
    settings = Settings(db_url="postgresql://u:pw@127.0.0.1:5432/test")
    assert store_label(settings) == "postgresql://u@127.0.0.1:5432/test"


def test_the_settings_open_a_postgres_store(postgres_schema: PostgresSchema) -> None:
    store = open_store(Settings(db_url=postgres_schema.store_url))
    try:
        assert isinstance(store, PostgresStore)
        store.write([tele("r-1", 1, (T0, 0.5))], [])
    finally:
        store.close()
    with psycopg.connect(postgres_schema.url) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {postgres_schema.name}.telemetry").fetchone()
    assert rows == (1,)


@pytest.mark.integration
def test_the_service_ingests_and_serves_on_postgres(
    mosquitto_broker: BrokerHandle, topic_site: str, postgres_schema: PostgresSchema
) -> None:
    broker = mosquitto_broker
    robot = broker.robot_ids[0]
    settings = service_settings(
        broker, topic_site, Path("unused.db"), db_url=postgres_schema.store_url
    )
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with running(settings) as client:
        for seq in (1, 2, 2, 3):
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0 + seq))
        rows = wait_rows(client, robot, 3)
        assert [r["values"]["temperature_c"] for r in rows] == [41.0, 42.0, 43.0]
    with running(settings) as client:  # a restart reads it back from PostgreSQL
        assert len(history(client, robot)) == 3
