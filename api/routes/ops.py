"""Operations: dead letters, Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.auth import HoldsKey, ReadAccess
from api.deps import LiveDep, MaintenanceDep, MetricsDep, StoreDep
from api.kpis import kpi_report
from api.private_truth import HIDDEN, carries_truth
from api.records import Rejects
from api.routes.kpis import kpi_window

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    problems: list[str]


@router.get("/api/rejects", summary="Refused messages")
def rejects(
    store: StoreDep,
    truth: HoldsKey,
    limit: Annotated[int, Query(ge=1, le=1000, description="Dead letters to return.")] = 100,
) -> Rejects:
    """Counts per reason, and the newest dead letters with their truncated payloads. The payload
    of one carrying ground truth (a ``truth`` topic) is shown only with ``X-API-Key``."""
    counts = store.reject_counts()
    recent = store.dead_letters(limit)
    if not truth:
        recent = [
            d.model_copy(update={"payload": HIDDEN}) if carries_truth(d.topic, d.payload) else d
            for d in recent
        ]
    return Rejects(counts=counts, total=sum(counts.values()), recent=recent)


@router.get(
    "/metrics",
    dependencies=[ReadAccess],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    summary="Prometheus metrics",
)
async def prometheus(metrics: MetricsDep, store: StoreDep, maintenance: MaintenanceDep) -> Response:
    # The KPI gauges cover the whole run (since the first stored message).
    window = await asyncio.to_thread(kpi_window, store, None, None)
    if window is not None:
        plant = maintenance.engine.scenario
        metrics.kpis.set(await asyncio.to_thread(kpi_report, store, plant, *window))
    # On the event loop, like every writer of live state: a scrape never sees it half-updated.
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
    summary="Readiness: subscribed to the broker and the store open",
)
async def readyz(live: LiveDep, response: Response) -> Readiness:
    problems = live.problems()
    if problems:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="not ready" if problems else "ready", problems=problems)
