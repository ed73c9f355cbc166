"""Shared fixtures. Real brokers: see ``tests/brokers.py`` for the whole API and how to use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from brokers import IMPLS, BrokerHandle, handle_for, start_session_broker

from broker_config.embedded import BrokerProcess


@pytest.fixture(scope="session")
def _mosquitto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = start_session_broker("mosquitto", tmp_path_factory.mktemp("mosquitto-state"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def _amqtt_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = start_session_broker("amqtt", tmp_path_factory.mktemp("amqtt-state"))
    yield process
    process.stop()


def _handle(process: BrokerProcess) -> Iterator[BrokerHandle]:
    handle = handle_for(process)
    yield handle
    handle.close_clients()


@pytest.fixture
def mosquitto_broker(_mosquitto_process: BrokerProcess) -> Iterator[BrokerHandle]:
    yield from _handle(_mosquitto_process)


@pytest.fixture
def amqtt_broker(_amqtt_process: BrokerProcess) -> Iterator[BrokerHandle]:
    yield from _handle(_amqtt_process)


@pytest.fixture(params=IMPLS)
def broker(request: pytest.FixtureRequest) -> BrokerHandle:
    """Each test using it runs once against Mosquitto and once against amqtt."""
    handle: BrokerHandle = request.getfixturevalue(f"{request.param}_broker")
    return handle


@pytest.fixture
def topic_site() -> str:
    """A site name no other test uses, so topics (and retained messages) never collide."""
    return f"t-{uuid.uuid4().hex[:8]}"
