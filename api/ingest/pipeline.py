"""The ingest pipeline: parse → validate → dedupe → store → live state, one batch at a time.

:func:`classify` is the pure first half: bytes and a topic become an :class:`~api.store.Accepted`
message, a :class:`~api.store.Refused` dead letter, or ``None`` for traffic the service ignores
(commands, which flow the other way, and the fleet's pace and the ingest progress, which the
service itself publishes). The :class:`~api.ingest.clock_guard.ClockGuard` then refuses a time
the service must not trust (reason ``clock``), before anything is stored. :class:`Pipeline`
writes a batch in one store transaction and, only after the commit, returns what is new so the
caller can acknowledge the messages to the broker, update live state and feed the stream.
Nothing a sender does can raise out of here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.inbound import Inbound
from api.ingest.clock_guard import CLOCK, ClockGuard
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
    #: Position in the batch of each refused message (same order as ``refused``).
    refused_at: list[int] = field(default_factory=list)
    ignored: list[Inbound] = field(default_factory=list)
    committed_at: float = 0.0  # wall clock

    def rejections(self) -> dict[int, str]:
        """Reject reason by position in the batch, for the raw stream."""
        return {i: r.reason for i, r in zip(self.refused_at, self.refused, strict=True)}


class Pipeline:
    """Classify a batch and commit it to the store in one transaction."""

    def __init__(self, store: Store, guard: ClockGuard | None = None) -> None:
        self.store = store
        self.guard = guard if guard is not None else ClockGuard()

    def write(self, batch: Sequence[Inbound]) -> BatchResult:
        """Runs in a worker thread. Raises only what the store raises (nothing was committed)."""
        result = BatchResult()
        accepted: list[Accepted] = []
        for position, inbound in enumerate(batch):
            verdict = classify(inbound)
            if verdict is None:
                result.ignored.append(inbound)
            elif isinstance(verdict, Refused):
                result.refused.append(verdict)
                result.refused_at.append(position)
            elif (why := self.guard.check(verdict.topic.channel, verdict.payload)) is not None:
                refused = Refused.of(
                    inbound.topic, CLOCK, why, inbound.payload, inbound.received_at
                )
                result.refused.append(refused)
                result.refused_at.append(position)
            else:
                accepted.append(verdict)
        outcomes = self.store.write(accepted, result.refused)
        result.committed_at = time.time()
        sorted_into = {
            Outcome.NEW: result.new,
            Outcome.DUPLICATE: result.duplicates,
            Outcome.STALE: result.stale,
        }
        for message, outcome in zip(accepted, outcomes, strict=True):
            sorted_into[outcome].append(message)
        return result

    def write_each(self, batch: Sequence[Inbound]) -> BatchResult:
        """Commit message by message: after a batch failed for a reason other than the store
        being unavailable, so one message the store cannot take is refused and the rest land."""
        total = BatchResult()
        for position, message in enumerate(batch):
            try:
                one = self.write([message])
            except StoreUnavailable:
                raise
            except Exception as exc:
                log.exception("the store refused a message from %.120s", message.topic)
                refused = Refused.of(
                    message.topic, INTERNAL_ERROR, repr(exc), message.payload, message.received_at
                )
                one = self._dead_letter_only(refused)
            total.new += one.new
            total.duplicates += one.duplicates
            total.stale += one.stale
            total.refused += one.refused
            total.refused_at += [position] * len(one.refused)
            total.ignored += one.ignored
            total.committed_at = one.committed_at
        return total

    def _dead_letter_only(self, refused: Refused) -> BatchResult:
        try:
            self.store.write([], [refused])
        except Exception:
            log.exception("cannot even keep the dead letter; dropping it")
        return BatchResult(refused=[refused], committed_at=time.time())
