"""``/api/robots``: the robots, one robot, and its telemetry history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.auth import ReadAccess
from api.deps import LiveDep, SettingsDep, StoreDep
from api.records import Robot, TelemetrySeries
from api.store import Store, plan_query
from contract.payloads import MetricName

router = APIRouter(prefix="/api", tags=["robots"], dependencies=[ReadAccess])


class Problem(BaseModel):
    detail: str


RobotId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
        description="Robot id, as in its topics.",
    ),
]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {"model": Problem, "description": "No such robot."}
}


def _robot_or_404(store: Store, robot_id: str) -> Robot:
    robot = store.robot(robot_id)
    if robot is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no robot {robot_id!r} has published yet; GET /api/robots lists the known ones",
        )
    return robot


@router.get("/robots", summary="Every robot with its state, last contact and newest reading")
def list_robots(store: StoreDep) -> list[Robot]:
    return store.robots()


@router.get("/robots/{robot_id}", responses=NOT_FOUND, summary="One robot")
def get_robot(robot_id: RobotId, store: StoreDep) -> Robot:
    return _robot_or_404(store, robot_id)


@router.get(
    "/robots/{robot_id}/telemetry",
    responses={
        **NOT_FOUND,
        status.HTTP_400_BAD_REQUEST: {
            "model": Problem,
            "description": "The range or the number of points is over a cap; the message says "
            "the cap and how to narrow the query.",
        },
    },
    summary="Telemetry history, optionally averaged into buckets",
)
def robot_telemetry(
    robot_id: RobotId,
    store: StoreDep,
    live: LiveDep,
    settings: SettingsDep,
    metric: Annotated[MetricName | None, Query(description="One metric; all when omitted.")] = None,
    since: Annotated[
        float | None,
        Query(description="Simulated Unix seconds; default `until` minus the default window."),
    ] = None,
    until: Annotated[
        float | None, Query(description="Simulated Unix seconds; default the newest message time.")
    ] = None,
    every: Annotated[
        float | None, Query(gt=0, description="Average per bucket of this many seconds.")
    ] = None,
) -> TelemetrySeries:
    """Readings with ``since <= ts <= until``. Caps (settings): at most ``telemetry_max_points``
    points, a range of at most ``telemetry_max_range_s``, and with ``every`` at most
    ``telemetry_max_scan_rows`` readings averaged. A query past a cap is refused with 400."""
    _robot_or_404(store, robot_id)
    query = plan_query(
        robot_id,
        metric,
        since,
        until,
        every,
        clock=live.clock,
        default_window_s=settings.telemetry_default_window_s,
        max_range_s=settings.telemetry_max_range_s,
        max_points=settings.telemetry_max_points,
        max_scan_rows=settings.telemetry_max_scan_rows,
    )
    return TelemetrySeries(
        robot=robot_id,
        metric=metric,
        since=query.since,
        until=query.until,
        every=every,
        points=store.telemetry(query),
    )
