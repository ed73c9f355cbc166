"""Password-file hashes for Mosquitto and amqtt, computed in Python (no ``mosquitto_passwd``).

Mosquitto 2.0 reads ``$7$<iterations>$<base64 salt>$<base64 hash>``: PBKDF2-HMAC-SHA512 over the
raw salt bytes, standard base64 with padding — what ``mosquitto_passwd`` writes. amqtt 0.12's
``FileAuthPlugin`` verifies with pwdlib, which reads Argon2 (``$argon2id$...``) hashes; it also
reads ``$6$`` sha512-crypt but warns that this is deprecated, so we give it Argon2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from pwdlib.hashers.argon2 import Argon2Hasher

#: What ``mosquitto_passwd`` 2.0 uses. Each connect pays for these rounds; on a loopback demo
#: broker the random 144-bit passwords, not the rounds, carry the strength.
MOSQUITTO_PBKDF2_ITERATIONS = 101
MOSQUITTO_SALT_BYTES = 12
#: OWASP's minimum Argon2id setting (19 MiB, 2 passes, 1 lane): ~20 ms per connect instead of
#: ~100 ms with argon2-cffi's defaults, which matters when twelve robots connect at once.
ARGON2_MEMORY_KIB = 19456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_PBKDF2_ITERATIONS
) -> str:
    """A Mosquitto 2.0 ``$7$`` PBKDF2-SHA512 hash of ``password``."""
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """Check ``password`` against a ``$7$`` hash (used by tests and by sanity checks)."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
        if kind != "7":
            return False
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        computed = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed, digest)


def _argon2() -> Argon2Hasher:
    return Argon2Hasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
    )


def amqtt_hash(password: str) -> str:
    """An Argon2id hash that amqtt's ``FileAuthPlugin`` (via pwdlib) verifies."""
    return str(_argon2().hash(password))


def verify_amqtt_hash(password: str, encoded: str) -> bool:
    return bool(_argon2().verify(password, encoded))


def _check_username(username: str) -> str:
    if not username or ":" in username or "\n" in username:
        raise ValueError(f"username {username!r} cannot go in a password file")
    return username


def render_mosquitto_passwd(users: Mapping[str, str]) -> str:
    """A Mosquitto ``password_file`` for ``{username: password}``, sorted by username."""
    return "".join(f"{_check_username(u)}:{mosquitto_hash(users[u])}\n" for u in sorted(users))


def render_amqtt_passwd(users: Mapping[str, str]) -> str:
    """An amqtt ``password-file`` for ``{username: password}``, sorted by username."""
    return "".join(f"{_check_username(u)}:{amqtt_hash(users[u])}\n" for u in sorted(users))
