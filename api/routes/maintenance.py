"""Maintenance: robot health, alarms, work orders; manual jobs and fault injection (API key).

Health comes from the engine as it is now; alarms and work orders from the store, which keeps
them across restarts. The two write endpoints go through the maintenance loop: the same lock,
scheduler, lifecycle and command path as the engine's own decisions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.exceptions import RequestValidationError

from api.auth import ApiKeyRequired, ReadAccess
from api.deps import LiveDep, MaintenanceDep, SettingsDep, StoreDep
from api.live import LiveState
from api.maintenance.loop import API_REQUESTER, MaintenanceLoop
from api.records.maintenance import (
    Alarm,
    CancelRequest,
    FaultAccepted,
    FaultRequest,
    RobotHealth,
    WorkOrder,
    WorkOrderRequest,
    WorkOrderStatus,
)
from api.routes.robots import Problem, RobotId
from contract.faults import fault_problem

router = APIRouter(prefix="/api", tags=["maintenance"])
MAX_LIST = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIST, description="Most items to return, newest first.")]
WorkOrderId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$", description="e.g. wo-000001"),
]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


UNKNOWN_ROBOT: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: _problem("The engine's scenario has no such robot.")
}
WRITE_REFUSALS: dict[int | str, dict[str, Any]] = {
    status.HTTP_400_BAD_REQUEST: _problem("The body is not JSON."),
    status.HTTP_401_UNAUTHORIZED: _problem("The X-API-Key header is missing."),
    status.HTTP_403_FORBIDDEN: _problem("The API key is wrong, or none is configured."),
    status.HTTP_429_TOO_MANY_REQUESTS: _problem(
        "Too many writes with this key; Retry-After says how many seconds to wait."
    ),
    status.HTTP_409_CONFLICT: _problem(
        "It cannot be done now: no simulated time yet, or the schedule refuses it (the message "
        "says why and what to do)."
    ),
}


def _clock(live: LiveState) -> float:
    if live.clock is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the service has received no message yet, so it has no simulated time to act in; "
            "start the robots (factory simulate) and try again",
        )
    return live.clock


def _followed(maintenance: MaintenanceLoop, robot: str) -> None:
    if robot not in maintenance.robots:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"robot {robot!r} is not in scenario {maintenance.engine.scenario.name!r}, which the "
            f"maintenance engine follows; its robots are {', '.join(sorted(maintenance.robots))}",
        )


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
    """A 422 in FastAPI's documented shape, for a body that is valid JSON but not for this robot."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}]
    )


@router.get(
    "/robots/{robot_id}/health",
    dependencies=[ReadAccess],
    responses=UNKNOWN_ROBOT,
    summary="Health, zone and RUL of each component, with active alarms",
)
async def robot_health(
    robot_id: RobotId, maintenance: MaintenanceDep, live: LiveDep
) -> RobotHealth:
    """The maintenance engine's view now: per component its indicator, health index (1 = as
    new), zone, remaining useful life with its interval (operating hours) and predicted failure
    time, and the policy the service runs."""
    _followed(maintenance, robot_id)
    seen = live.robots.get(robot_id)
    ts = None if seen is None else seen.values_ts if seen.values_ts is not None else seen.last_seen
    return maintenance.health(robot_id, ts)


@router.get("/alarms", dependencies=[ReadAccess], summary="Alarms, newest first")
def list_alarms(
    store: StoreDep,
    active: Annotated[bool | None, Query(description="Only active (or only cleared).")] = None,
    robot: Annotated[str | None, Query(max_length=32, description="Only this robot.")] = None,
    limit: Limit = 200,
) -> list[Alarm]:
    return store.alarms(active, robot, limit)


@router.get("/work-orders", dependencies=[ReadAccess], summary="Work orders, newest first")
def list_work_orders(
    store: StoreDep,
    robot: Annotated[str | None, Query(max_length=32, description="Only this robot.")] = None,
    status_: Annotated[
        WorkOrderStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    active: Annotated[
        bool | None, Query(description="Only active (planned … in progress), or only closed.")
    ] = None,
    limit: Limit = 200,
) -> list[WorkOrder]:
    return store.work_orders(robot, status_, active, limit)


@router.get(
    "/work-orders/{work_order_id}",
    dependencies=[ReadAccess],
    responses={status.HTTP_404_NOT_FOUND: _problem("No such work order.")},
    summary="One work order with its lifecycle history",
)
def get_work_order(work_order_id: WorkOrderId, store: StoreDep) -> WorkOrder:
    found = store.work_order(work_order_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no work order {work_order_id!r}; GET /api/work-orders lists them",
        )
    return found


@router.post(
    "/work-orders",
    dependencies=[ApiKeyRequired],
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_REFUSALS, **UNKNOWN_ROBOT},
    summary="Book a manual maintenance job",
)
async def create_work_order(
    request: WorkOrderRequest, maintenance: MaintenanceDep, live: LiveDep
) -> WorkOrder:
    """Placed by the engine's scheduler (at ``start_ts`` exactly, or the earliest feasible slot),
    then sent to the robot as a schedule_maintenance command; it follows the same lifecycle as
    the engine's own orders."""
    _followed(maintenance, request.robot)
    components = maintenance.engine.fleet.robots[request.robot].components
    if request.component not in components:
        raise _invalid(
            "component",
            f"robot {request.robot} has no component {request.component!r}; "
            f"its components are {', '.join(components)}",
            request.component,
        )
    now_ts = _clock(live)
    try:
        return await maintenance.request_work_order(request, now_ts)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post(
    "/work-orders/{work_order_id}/cancel",
    dependencies=[ApiKeyRequired],
    responses={**WRITE_REFUSALS, status.HTTP_404_NOT_FOUND: _problem("No such work order.")},
    summary="Cancel a work order (sent to the robot as a cancel_maintenance command)",
)
async def cancel_work_order(
    work_order_id: WorkOrderId,
    maintenance: MaintenanceDep,
    live: LiveDep,
    request: CancelRequest | None = None,
) -> WorkOrder:
    """Only a planned, dispatched or acknowledged order can be cancelled (409 otherwise: work
    in progress finishes). It goes through the engine's lifecycle like the planner's own
    cancellations, and the robot gets a ``cancel_maintenance`` command for it."""
    now_ts = _clock(live)
    why = request.reason if request is not None and request.reason else None
    reason = f"cancelled by {API_REQUESTER}" + (f" ({why})" if why else "")
    try:
        return await maintenance.cancel_work_order(work_order_id, reason, now_ts)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"the engine has no work order {work_order_id!r}; GET /api/work-orders lists them",
        ) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post(
    "/robots/{robot_id}/faults",
    dependencies=[ApiKeyRequired],
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **WRITE_REFUSALS,
        status.HTTP_404_NOT_FOUND: _problem("No such robot."),
        status.HTTP_503_SERVICE_UNAVAILABLE: _problem("The command could not be queued."),
    },
    summary="Inject a fault (sent to the robot as an inject_fault command)",
)
async def inject_fault(
    robot_id: RobotId,
    request: FaultRequest,
    maintenance: MaintenanceDep,
    live: LiveDep,
    settings: SettingsDep,
) -> FaultAccepted:
    """Accepted means published at QoS 1 (a robot that is offline gets it when it returns,
    unless it has expired by then). The robot answers with an ack on its event topic."""
    if robot_id not in maintenance.robots and robot_id not in maintenance.sender.topics:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no robot {robot_id!r} is known; GET /api/robots lists the ones heard from",
        )
    if robot_id in maintenance.robots:
        parts = list(maintenance.engine.fleet.robots[robot_id].components)
        problem = fault_problem(request.fault, request.component, request.sensor, parts)
        if problem is not None:
            field = "component" if "component" in problem else "sensor"
            raise _invalid(field, problem, getattr(request, field))
    now_ts = _clock(live)
    accepted = await maintenance.inject_fault(
        robot_id, request, now_ts, settings.fault_command_expiry_s
    )
    if accepted is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the MQTT client could not queue the command; check /readyz and try again",
        )
    return accepted
