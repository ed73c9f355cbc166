"""Shared fixtures. Real brokers: see ``tests/brokers.py`` for the whole API and how to use it.

Nothing a test starts outlives it (``tests/processes.py``): after every test, a process it
started and left running is stopped with everything below it, and the test errors naming it;
at the end of the session — also after Ctrl-C — anything of the run still alive is stopped and
the run fails.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest
from brokers import IMPLS, BrokerHandle, handle_for, start_session_broker, start_session_nats
from hypothesis import HealthCheck, settings
from processes import (
    become_subreaper,
    descendants,
    describe,
    lasting,
    leftovers,
    snapshot,
    stop_trees,
)
from store_backends import postgres_schema, store_backend  # noqa: F401 - fixtures

from broker_config.embedded import BrokerProcess

# Property tests must not depend on how loaded the machine is (CI shares two cores), and a CI
# failure must be reproducible: no deadlines, no speed health check, a derandomized search.
settings.register_profile(
    "factory",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("factory")

#: Set in CI (.ci/run): a test that needs a broker, a browser or PostgreSQL must run there, so a
#: skip fails.
STRICT_ENV = ("FACTORY_REQUIRE_BROKERS", "FACTORY_REQUIRE_BROWSER", "FACTORY_REQUIRE_POSTGRES")


def pytest_configure(config: pytest.Config) -> None:
    become_subreaper()  # orphans of a killed process are adopted by the session, not lost


@pytest.fixture(autouse=True)
def _nothing_outlives_the_test() -> Iterator[None]:
    """Set up after the wider fixtures (their processes are in the snapshot), torn down after
    the test's own fixtures: what is left then, the test left running."""
    before = snapshot()
    yield
    left = leftovers(before)
    if left:
        names = "; ".join(describe(p) for p in left)
        stop_trees(left)
        pytest.fail(f"the test left {len(left)} process(es) running (now stopped): {names}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is torn down (also after Ctrl-C): nothing of the run may be alive."""
    left = descendants()
    if not left:
        return
    names = "; ".join(describe(p) for p in left)
    stop_trees(left)
    message = (
        f"{len(left)} process(es) of the test run were still alive at its end and were "
        f"stopped: {names}"
    )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"ERROR: {message}", red=True)
    else:
        print(f"ERROR: {message}", file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    strict = any(os.environ.get(name) == "1" for name in STRICT_ENV)
    if strict and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped where skips are not allowed ({' / '.join(STRICT_ENV)}): " + str(
            report.longrepr
        )


@pytest.fixture(scope="session")
def _mosquitto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with lasting():
        process = start_session_broker("mosquitto", tmp_path_factory.mktemp("mosquitto-state"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def _amqtt_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with lasting():
        process = start_session_broker("amqtt", tmp_path_factory.mktemp("amqtt-state"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def _nats_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with lasting():
        cluster = start_session_nats(tmp_path_factory.mktemp("nats-state"))
    yield cluster
    cluster.stop()


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


@pytest.fixture
def nats_broker(_nats_process: BrokerProcess) -> Iterator[BrokerHandle]:
    """A 3-node NATS JetStream cluster; ``url`` is its first node's MQTT listener."""
    yield from _handle(_nats_process)


@pytest.fixture(params=IMPLS)
def broker(request: pytest.FixtureRequest) -> BrokerHandle:
    """Each test using it runs once against Mosquitto and once against amqtt (a test may ask
    for NATS too: ``@pytest.mark.parametrize("broker", CLUSTER_IMPLS, indirect=True)``)."""
    handle: BrokerHandle = request.getfixturevalue(f"{request.param}_broker")
    return handle


@pytest.fixture
def topic_site() -> str:
    """A site name no other test uses, so topics (and retained messages) never collide."""
    return f"t-{uuid.uuid4().hex[:8]}"
