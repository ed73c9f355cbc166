"""API-key access: ``X-API-Key`` for write endpoints, and for reads when the settings say so.

A missing key is 401, a wrong one 403; keys are compared in constant time. With no key
configured (``FACTORY_API_KEY`` unset) every write is refused, with a message saying how to set one.
Writes with the right key are rate-limited per key (:mod:`api.rate_limit`): 429 with
``Retry-After`` past the settings' rate and burst.

Reads that may carry ground truth (the stream's raw channel, the dead letters) ask
:func:`holds_key`: open to all, but truth only for a client with the right key. The stream also
takes the key as the ``api_key`` query parameter, because a browser's ``EventSource`` cannot set
headers; :class:`RedactApiKey` keeps it out of the access log.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader

from api.deps import MetricsDep, SettingsDep
from api.rate_limit import WriteLimiter, retry_after

API_KEY_HEADER = "X-API-Key"
#: The stream's query parameter for the key (EventSource sends no headers).
API_KEY_QUERY = "api_key"

_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The service's API key: FACTORY_API_KEY, or STATE_DIR/api-key for factory serve.",
)


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_header)] = None
) -> None:
    """Dependency of every write endpoint."""
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"this endpoint needs the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    expected = settings.api_key
    if expected is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "no API key is configured: set FACTORY_API_KEY to allow writes",
        )
    if not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"wrong {API_KEY_HEADER}")


def limited_write(
    request: Request,
    settings: SettingsDep,
    metrics: MetricsDep,
    key: Annotated[str | None, Security(_header)] = None,
) -> None:
    """Dependency of every write endpoint: the right key, then a token from its bucket."""
    require_api_key(settings, key)
    limiter: WriteLimiter = request.state.limiter
    wait_s = limiter.take(key or "")
    if wait_s is not None:
        metrics.rate_limited.inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many writes with this key: at most {limiter.burst} at once and "
            f"{limiter.rate_per_s:g} a second (FACTORY_WRITE_RATE_PER_S, FACTORY_WRITE_BURST); "
            f"retry in {retry_after(wait_s)} s",
            headers={"Retry-After": retry_after(wait_s)},
        )


def read_access(request: Request, settings: SettingsDep) -> None:
    """Dependency of every read endpoint: open unless ``require_key_for_reads`` is set.

    It reads the header itself so the schema does not mark open reads as secured.
    """
    if settings.require_key_for_reads:
        require_api_key(settings, request.headers.get(API_KEY_HEADER))


def _presents_key(request: Request, settings: SettingsDep, key: str | None) -> bool:
    """No key: an ordinary read (False); the right key: True; a wrong one: 403."""
    if not key:
        read_access(request, settings)
        return False
    expected = settings.api_key
    if expected is None or not hmac.compare_digest(
        key.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"wrong {API_KEY_HEADER}")
    return True


def holds_key(request: Request, settings: SettingsDep) -> bool:
    """Dependency of reads that may carry ground truth: whether the client sent the right
    ``X-API-Key`` (a wrong one is 403; none is an open read, without truth)."""
    return _presents_key(request, settings, request.headers.get(API_KEY_HEADER))


def stream_holds_key(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[
        str | None,
        Query(
            alias=API_KEY_QUERY,
            description="The API key, for clients that cannot send the X-API-Key header (a "
            "browser's EventSource). With the key (either way), raw messages carrying ground "
            "truth are streamed too; a wrong key is 403.",
        ),
    ] = None,
) -> bool:
    """:func:`holds_key` for the stream: the key from the header or the ``api_key`` query."""
    return _presents_key(request, settings, request.headers.get(API_KEY_HEADER) or api_key)


class RedactApiKey(logging.Filter):
    """Takes the ``api_key`` query parameter's value out of uvicorn's access-log lines."""

    _KEY = re.compile(rf"({API_KEY_QUERY}=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._KEY.sub(r"\1…", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


ApiKeyRequired = Depends(limited_write)
ReadAccess = Depends(read_access)
HoldsKey = Annotated[bool, Depends(holds_key)]
StreamHoldsKey = Annotated[bool, Depends(stream_holds_key)]
