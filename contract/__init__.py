"""The M2M contract both sides import: topics, payload models, QoS and the wire codec."""

from contract.codec import (
    MAX_PAYLOAD_BYTES,
    Payload,
    Rejected,
    RejectReason,
    decode,
    decode_message,
    encode,
)
from contract.topics import (
    DEFAULT_QOS,
    RETAINED_CHANNELS,
    ROBOT_CHANNELS,
    Channel,
    Topic,
    TopicError,
    matches,
    topic_filter,
)

__all__ = [
    "DEFAULT_QOS",
    "MAX_PAYLOAD_BYTES",
    "RETAINED_CHANNELS",
    "ROBOT_CHANNELS",
    "Channel",
    "Payload",
    "RejectReason",
    "Rejected",
    "Topic",
    "TopicError",
    "decode",
    "decode_message",
    "encode",
    "matches",
    "topic_filter",
]
