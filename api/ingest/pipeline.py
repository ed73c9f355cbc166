"""The ingest pipeline: parse → validate → dedupe → store → live state, one batch at a time.

:func:`classify` is the pure first half: bytes and a topic become an :class:`~api.store.Accepted`
message, a :class:`~api.store.Refused` dead letter, or ``None`` for traffic the service ignores
(commands, which flow the other way, and the fleet's pace and the ingest progress, which the
service itself publishes). The :class:`~api.ingest.clock_guard.ClockGuard` then refuses a time
the service must not trust (reason ``clock``), before anything is stored; a time only ahead of
the fleet's clock is held first (:mod:`api.ingest.held`) and decided in a later batch.
:class:`Pipeline` writes a batch in one store transaction and, only after the commit, returns
what it decided (the messages to acknowledge to the broker: all but the held ones, and the held
ones decided now) and what is new, so the caller can update live state and feed the stream.
Nothing a sender does can raise out of here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.inbound import Inbound
from api.ingest.clock_guard import CLOCK, ClockGuard
from api.ingest.held import Held, Waiting
from api.store import Accepted, Outcome, Refused, Store, StoreUnavailable
from contract.codec import Rejected, decode_message
from contract.ingest import is_ingest_topic
from contract.pace import is_pace_topic
from contract.topics import Channel, Topic, TopicError

log = logging.getLogger(__name__)

#: Reason recorded when the pipeline itself fails on a message (a bug, never the sender's fault).
INTERNAL_ERROR = "internal_error"


def classify(message: Inbound) -> Accepted | Refused | None:
    """Decode one message against the contract; never raises."""
    if message.topic.endswith("/" + Channel.CMD) and _is_command_topic(message.topic):
        return None  # commands flow service → robot; ours come back through factory/#
    if is_pace_topic(message.topic):
        return None  # the pace is not a robot's message; the consumer hands it to the pace desk
    if is_ingest_topic(message.topic):
        return None  # our own progress report (api.ingest.progress), heard back
    try:
        topic, payload = decode_message(message.topic, message.payload)
    except Rejected as exc:
        return Refused.of(
            message.topic, exc.reason, exc.detail, message.payload, message.received_at
        )
    except Exception as exc:  # a bug must cost one message, not the consumer
        log.exception("ingest failed on a message from %.120s", message.topic)
        return Refused.of(
            message.topic, INTERNAL_ERROR, repr(exc), message.payload, message.received_at
        )
    return Accepted(topic, payload, message.received_at)


def _is_command_topic(topic: str) -> bool:
    try:
        return Topic.parse(topic).channel is Channel.CMD
    except TopicError:
        return False  # decode_message names the reason


@dataclass(slots=True)
class BatchResult:
    """What one committed batch did."""

    new: list[Accepted] = field(default_factory=list)
    duplicates: list[Accepted] = field(default_factory=list)
    stale: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    #: Position in ``decided`` of each refused message (same order as ``refused``).
    refused_at: list[int] = field(default_factory=list)
    ignored: list[Inbound] = field(default_factory=list)
    #: Every message this batch decided, in order: the batch's own but those held, then the
    #: held ones decided now. These, and only these, are acknowledged to the broker.
    decided: list[Inbound] = field(default_factory=list)
    #: Messages held after this batch (ahead of the fleet's clock, not yet decided).
    held: int = 0
    committed_at: float = 0.0  # wall clock

    def rejections(self) -> dict[int, str]:
        """Reject reason by position in ``decided``, for the raw stream."""
        return {i: r.reason for i, r in zip(self.refused_at, self.refused, strict=True)}

    def refuse(self, inbound: Inbound, refused: Refused) -> None:
        self.refused.append(refused)
        self.refused_at.append(len(self.decided))
        self.decided.append(inbound)


class Pipeline:
    """Classify a batch and commit it to the store in one transaction."""

    def __init__(self, store: Store, guard: ClockGuard | None = None) -> None:
        self.store = store
        self.guard = guard if guard is not None else ClockGuard()
        self.held = Held()

    def hold_deadline(self) -> float | None:
        """When (guard's wall clock) the longest-held message must be decided; ``None`` if none
        is held. The caller writes an empty batch then if nothing else came."""
        since = self.held.since()
        return None if since is None else since + self.guard.rule.hold_s

    def write(self, batch: Sequence[Inbound]) -> BatchResult:
        """Runs in a worker thread. Raises only what the store raises (nothing was committed,
        and the held messages are as they were)."""
        result = BatchResult()
        accepted: list[Accepted] = []
        held = self.held.copy()
        now = self.guard.wall()
        for inbound in batch:
            verdict = classify(inbound)
            if verdict is None:
                result.ignored.append(inbound)
                result.decided.append(inbound)
            elif isinstance(verdict, Refused):
                result.refuse(inbound, verdict)
            elif (why := self.guard.check(verdict.topic.channel, verdict.payload)) is None:
                accepted.append(verdict)
                result.decided.append(inbound)
            elif why.ahead and self.guard.rule.hold_s > 0:
                held.append(Waiting(inbound, verdict, now))
            else:
                result.refuse(inbound, _clock(inbound, why.detail))
        if held:
            self._decide_held(held, now, result, accepted)
        outcomes = self.store.write(accepted, result.refused)
        self.held = held
        result.held = len(held)
        result.committed_at = time.time()
        sorted_into = {
            Outcome.NEW: result.new,
            Outcome.DUPLICATE: result.duplicates,
            Outcome.STALE: result.stale,
        }
        for message, outcome in zip(accepted, outcomes, strict=True):
            sorted_into[outcome].append(message)
        return result

    def _decide_held(
        self, held: Held, now: float, result: BatchResult, accepted: list[Accepted]
    ) -> None:
        """Ask the guard again about each held message, in arrival order, until nothing changes
        (one robot's time landing can confirm another's); refuse what waited too long."""
        rule = self.guard.rule
        changed = True
        while changed and held:
            changed = False
            waited = list(held)
            held.clear()
            for waiting in waited:
                message = waiting.accepted
                why = self.guard.check(message.topic.channel, message.payload)
                if why is not None and why.ahead and now - waiting.since < rule.hold_s:
                    held.append(waiting)
                    continue
                changed = True
                if why is None:
                    accepted.append(message)
                    result.decided.append(waiting.inbound)
                else:
                    detail = why.detail
                    if why.ahead:
                        detail += f"; held {now - waiting.since:.1f} s, no other robot confirmed it"
                    result.refuse(waiting.inbound, _clock(waiting.inbound, detail))
        while len(held) > rule.hold_max:
            waiting = held.popleft()
            detail = (
                f"held {now - waiting.since:.1f} s ahead of the fleet's clock; more than "
                f"{rule.hold_max} messages were held"
            )
            result.refuse(waiting.inbound, _clock(waiting.inbound, detail))

    def write_each(self, batch: Sequence[Inbound]) -> BatchResult:
        """Commit message by message: after a batch failed for a reason other than the store
        being unavailable, so one message the store cannot take is refused and the rest land."""
        total = BatchResult()
        for message in batch:
            try:
                one = self.write([message])
            except StoreUnavailable:
                raise
            except Exception as exc:
                log.exception("the store refused a message from %.120s", message.topic)
                refused = Refused.of(
                    message.topic, INTERNAL_ERROR, repr(exc), message.payload, message.received_at
                )
                one = self._dead_letter_only(message, refused)
            total.new += one.new
            total.duplicates += one.duplicates
            total.stale += one.stale
            total.refused += one.refused
            total.refused_at += [len(total.decided) + i for i in one.refused_at]
            total.ignored += one.ignored
            total.decided += one.decided
            total.held = one.held
            total.committed_at = one.committed_at
        return total

    def _dead_letter_only(self, inbound: Inbound, refused: Refused) -> BatchResult:
        try:
            self.store.write([], [refused])
        except Exception:
            log.exception("cannot even keep the dead letter; dropping it")
        result = BatchResult(held=len(self.held), committed_at=time.time())
        result.refuse(inbound, refused)
        return result


def _clock(inbound: Inbound, detail: str) -> Refused:
    return Refused.of(inbound.topic, CLOCK, detail, inbound.payload, inbound.received_at)
