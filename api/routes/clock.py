"""The clock: the simulated time the service has reached, and the fleet's pace (API key to change).

``POST /api/clock`` publishes the pace retained on every site's ``factory/{site}/pace``
(:mod:`api.pace`); the robots pause, resume or change speed as soon as it reaches them. While
they are paused nothing new is ingested, so the service's clock stands still too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import ApiKeyRequired, ReadAccess
from api.deps import LiveDep, PaceDep
from api.live import LiveState
from api.pace import PaceDesk, PaceUnknown
from api.routes.robots import Problem
from contract.pace import FACTOR_MAX

router = APIRouter(prefix="/api", tags=["clock"])

Factor = Annotated[
    float,
    Field(gt=0.0, le=FACTOR_MAX, description="Simulated seconds per wall second, e.g. 60 or 3600."),
]


class ClockRequest(BaseModel):
    """A change of pace: pause or resume, a new speed, or both. What is left out stays."""

    model_config = ConfigDict(extra="forbid")

    paused: bool | None = Field(default=None, description="true pauses the whole factory.")
    factor: Factor | None = None

    @model_validator(mode="after")
    def _says_something(self) -> ClockRequest:
        if self.paused is None and self.factor is None:
            raise ValueError('say "paused", "factor" or both')
        return self


class Clock(BaseModel):
    """Where the simulated clock stands and how fast it moves."""

    clock: float | None = Field(
        description="Newest simulated time ingested, Unix seconds; null before the first message."
    )
    paused: bool | None = Field(description="Whether the robots are paused; null if unknown.")
    factor: float | None = Field(description="Simulated seconds per wall second; null if unknown.")
    set_at: float | None = Field(description="Wall-clock time the pace was set, Unix seconds.")
    sites: list[str] = Field(description="The sites whose pace this service sets.")


def _clock(live: LiveState, desk: PaceDesk) -> Clock:
    pace = desk.current
    return Clock(
        clock=live.clock,
        paused=None if pace is None else pace.paused,
        factor=None if pace is None else pace.factor,
        set_at=None if pace is None else pace.ts,
        sites=desk.sites,
    )


REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: {"model": Problem, "description": "The body is not JSON."},
    status.HTTP_401_UNAUTHORIZED: {"model": Problem, "description": "No X-API-Key header."},
    status.HTTP_403_FORBIDDEN: {"model": Problem, "description": "Wrong or no API key."},
    status.HTTP_409_CONFLICT: {"model": Problem, "description": "No factor given or known."},
    status.HTTP_429_TOO_MANY_REQUESTS: {
        "model": Problem,
        "description": "Too many writes with this key; Retry-After says when to try again.",
    },
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "model": Problem,
        "description": "The broker client refused the message.",
    },
}


@router.get("/clock", dependencies=[ReadAccess], summary="The simulated clock and the pace")
async def get_clock(live: LiveDep, desk: PaceDep) -> Clock:
    return _clock(live, desk)


@router.post(
    "/clock",
    dependencies=[ApiKeyRequired],
    status_code=status.HTTP_202_ACCEPTED,
    responses=REFUSALS,
    summary="Pause, resume or change the speed of the whole factory",
)
async def set_clock(request: ClockRequest, live: LiveDep, desk: PaceDep) -> Clock:
    """Publishes the pace (retained, QoS 1) for the robots; 202 once the broker client has it."""
    try:
        _, sent = desk.change(paused=request.paused, factor=request.factor, by="service")
    except PaceUnknown as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not sent:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the MQTT client refused the pace message; see /readyz and try again",
        )
    return _clock(live, desk)
