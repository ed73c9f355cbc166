"""``/api/kpis``: availability, performance, quality, OEE, MTBF and MTTR per robot, per line and
for the plant, over a window of simulated time (:mod:`api.kpis`)."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from api.auth import ReadAccess
from api.deps import MaintenanceDep, StoreDep
from api.kpis import KpiReport, kpi_report
from api.store import Store

router = APIRouter(prefix="/api", tags=["kpis"], dependencies=[ReadAccess])


class Problem(BaseModel):
    detail: str


def kpi_window(
    store: Store, since: float | None, hours: float | None
) -> tuple[float, float] | None:
    """``[since, until)`` with ``until`` the simulated clock and ``since`` the latest of the first
    stored message (before it nothing is known), ``since`` and ``until − hours``. ``None`` when
    the store is empty."""
    until = store.clock()
    first = store.first_ts()
    if until is None or first is None:
        return None
    starts = [first]
    if since is not None:
        starts.append(since)
    if hours is not None:
        starts.append(until - hours * 3600.0)
    start = max(starts)  # both given: the shorter window
    return min(start, until), until


@router.get(
    "/kpis",
    summary="Plant KPIs per robot and line",
    responses={status.HTTP_400_BAD_REQUEST: {"model": Problem, "description": "Bad window."}},
)
async def kpis(
    store: StoreDep,
    maintenance: MaintenanceDep,
    since: Annotated[
        float | None,
        Query(
            description="Window start, simulated Unix seconds (default, and earliest: the "
            "first stored message)."
        ),
    ] = None,
    hours: Annotated[
        float | None,
        Query(gt=0, le=24 * 366, description="Window length back from the simulated clock."),
    ] = None,
) -> KpiReport:
    """Availability, performance, quality, OEE, MTBF and MTTR over ``[since, clock)`` in
    simulated time, computed from stored failure, repair, maintenance and parts events by the
    same code as the offline experiment's KPIs. With both ``since`` and ``hours``, the shorter
    window."""
    if since is not None and not math.isfinite(since):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "since must be a finite number")
    plant = maintenance.engine.scenario
    window = await asyncio.to_thread(kpi_window, store, since, hours)
    if window is None:
        return await asyncio.to_thread(kpi_report, store, plant, 0.0, 0.0)
    return await asyncio.to_thread(kpi_report, store, plant, *window)
