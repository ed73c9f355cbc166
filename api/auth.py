"""API-key access: ``X-API-Key`` for write endpoints, and for reads when the settings say so.

A missing key is 401, a wrong one 403; keys are compared in constant time. With no key
configured (``FACTORY_API_KEY`` unset) every write is refused, with a message saying how to set one.
Writes with the right key are rate-limited per key (:mod:`api.rate_limit`): 429 with
``Retry-After`` past the settings' rate and burst.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from api.deps import MetricsDep, SettingsDep
from api.rate_limit import WriteLimiter, retry_after

API_KEY_HEADER = "X-API-Key"

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


ApiKeyRequired = Depends(limited_write)
ReadAccess = Depends(read_access)
