"""Every process a test starts is accounted for: none outlives its test, none outlives the run.

Import with ``from processes import ...`` (pytest puts ``tests/`` on ``sys.path``).

* The test session becomes a *child subreaper* (Linux): a process whose parent dies — the
  broker of a ``factory up`` killed mid-test, say — is adopted by pytest instead of by init, so
  it is still found among pytest's descendants and can be stopped.
* :func:`descendants` lists the live (not zombie) processes below this one.
* :func:`leftovers` is what a test left behind: processes new since a snapshot that do not
  descend from a process already there (a module's Chromium may start renderers while a test
  runs; they are Chromium's, not the test's).
* :func:`lasting` marks processes meant to outlive a test — a session's brokers, a module's
  Chromium — which a fixture may start lazily in the middle of a test's setup.
* :func:`stop_trees` stops processes with everything below them: SIGTERM to each one's process
  group (tests start children with ``start_new_session=True``, so the group is theirs) and to
  each process, then SIGKILL whatever is still alive after a grace period.

``tests/conftest.py`` uses these around every test (an error in the test's teardown names what
it left) and at the end of the session (the run fails if anything of it is still alive).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator

import psutil

#: prctl(2) option that makes orphaned descendants reparent to this process (Linux ≥ 3.4).
PR_SET_CHILD_SUBREAPER = 36
#: How long a process gets to stop on SIGTERM before SIGKILL.
STOP_GRACE_S = 5.0


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


#: Identities of processes started under :func:`lasting`; they and their descendants are no
#: test's leftovers (the session-end check still requires them gone).
_LASTING: set[tuple[int, float]] = set()


@contextlib.contextmanager
def lasting() -> Iterator[None]:
    """Processes started in this block belong to a fixture wider than one test."""
    before = snapshot()
    try:
        yield
    finally:
        _LASTING.update(snapshot() - before)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants() -> list[psutil.Process]:
    """Live processes below this one (zombies, already dead, are left out)."""
    try:
        below = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in below if _alive(p)]


def snapshot() -> set[tuple[int, float]]:
    """Identities (pid, start time) of the live descendants now."""
    return {_identity(p) for p in descendants()}


def _identity(process: psutil.Process) -> tuple[int, float]:
    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return process.pid, 0.0


def leftovers(before: set[tuple[int, float]]) -> list[psutil.Process]:
    """Live descendants new since ``before`` that do not descend from a process in it."""
    found = []
    for process in descendants():
        if _identity(process) in before or _identity(process) in _LASTING:
            continue
        try:
            ancestors = process.parents()
        except psutil.Error:
            continue
        if any(_identity(a) in before or _identity(a) in _LASTING for a in ancestors):
            continue
        found.append(process)
    return found


def describe(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())[:160]
    except psutil.Error:
        command = "?"
    return f"pid {process.pid}: {command}"


def stop_trees(roots: list[psutil.Process], grace_s: float = STOP_GRACE_S) -> None:
    """Stop ``roots`` and everything below them: SIGTERM (groups and processes), then SIGKILL."""
    everyone: dict[int, psutil.Process] = {}
    for root in roots:
        everyone[root.pid] = root
        with contextlib.suppress(psutil.Error):
            everyone.update({p.pid: p for p in root.children(recursive=True)})
    own_group = os.getpgid(0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        living = [p for p in everyone.values() if _alive(p)]
        if not living:
            return
        for process in living:
            with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
                group = os.getpgid(process.pid)
                if group != own_group:
                    os.killpg(group, sig)
                process.send_signal(sig)
        psutil.wait_procs(living, timeout=grace_s)
