"""Dependency aliases for the routes: the shared resources the lifespan put on its state.

A route asks for ``store: StoreDep`` and gets the app's store; nothing is module-global, so two
apps (two tests) never share one.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import Depends, HTTPException, Request, status

from api.ingest.metrics import Metrics
from api.live import LiveState
from api.maintenance.loop import MaintenanceLoop
from api.pace import PaceDesk
from api.rate_limit import WriteLimiter
from api.settings import Settings
from api.store import Store
from api.stream import StreamHub


class AppState(TypedDict):
    """What the lifespan yields; Starlette copies it onto every ``request.state``."""

    settings: Settings
    store: Store
    live: LiveState
    hub: StreamHub
    metrics: Metrics
    maintenance: MaintenanceLoop
    pace: PaceDesk
    limiter: WriteLimiter


def _state(request: Request, name: str) -> Any:
    return getattr(request.state, name)


def get_settings(request: Request) -> Settings:
    settings: Settings = _state(request, "settings")
    return settings


def get_store(request: Request) -> Store:
    store: Store = _state(request, "store")
    return store


def get_live(request: Request) -> LiveState:
    live: LiveState = _state(request, "live")
    return live


def get_hub(request: Request) -> StreamHub:
    hub: StreamHub = _state(request, "hub")
    return hub


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = _state(request, "metrics")
    return metrics


def get_maintenance(request: Request) -> MaintenanceLoop:
    """The maintenance loop; 503 on a worker where it is on standby (another one leads)."""
    maintenance: MaintenanceLoop = _state(request, "maintenance")
    if maintenance.standby is not None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, maintenance.standby)
    return maintenance


def get_pace(request: Request) -> PaceDesk:
    pace: PaceDesk = _state(request, "pace")
    return pace


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
LiveDep = Annotated[LiveState, Depends(get_live)]
HubDep = Annotated[StreamHub, Depends(get_hub)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
MaintenanceDep = Annotated[MaintenanceLoop, Depends(get_maintenance)]
PaceDep = Annotated[PaceDesk, Depends(get_pace)]
