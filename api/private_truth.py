"""Ground truth stays private: what of the wire carries it, and what others see in its place.

The ``truth`` channel holds what the service is trying to predict (true wear, true remaining
life). The broker's ACL lets only the service and the ``instructor`` login read it; the service
itself must not hand it on to whoever opens its stream or its dead letters. So a message is
*truth* when any level of its topic is ``truth`` (valid or not: a malformed truth topic still
carries the answers), or when its payload has a truth payload's own keys (``wear``, ``rul_s``,
``rul_op_s``) whatever topic it came on. Such a message reaches a stream client, or shows its
payload in ``/api/rejects``, only for a client that presents the API key (:mod:`api.auth`).

Pure: no I/O, tested without a server.
"""

from __future__ import annotations

import re

from contract.topics import Channel

#: JSON keys only a truth payload has (``contract.payloads.ComponentTruth``). Searched in the
#: bytes, not parsed: a cut or malformed payload must not slip through.
_TRUTH_KEYS = re.compile(rb'"(?:wear|rul_s|rul_op_s)"\s*:')
#: What a client without the key sees instead of a truth payload in the dead letters.
HIDDEN = "(ground truth: shown only with the API key)"


def is_truth_topic(topic: str) -> bool:
    """Whether any level of ``topic`` names the truth channel."""
    return Channel.TRUTH.value in topic.split("/")


def carries_truth(topic: str, payload: bytes | str) -> bool:
    """Whether a message on ``topic`` with ``payload`` may reveal ground truth."""
    data = payload.encode("utf-8", errors="replace") if isinstance(payload, str) else payload
    return is_truth_topic(topic) or _TRUTH_KEYS.search(data) is not None
