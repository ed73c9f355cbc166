"""The built-in live dashboard: the page at ``/`` and its static files under ``/static/``.

The page is plain HTML, CSS and JavaScript modules from ``dashboards/web`` (third-party code
vendored there too), so it works offline. It reads the service's own JSON and SSE endpoints;
nothing here touches the store. The routes are left out of the OpenAPI schema: they are not API.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.staticfiles import StaticFiles

from api.deps import SettingsDep
from dashboards import WEB_DIR

#: Only this origin's files and endpoints: no CDN, nothing fetched from the network at run time.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: The participant page also speaks MQTT over WebSockets to the broker (another port).
JOIN_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "connect-src 'self'", "connect-src 'self' ws: wss:"
)
#: Revalidate every time (the files carry ETags): an upgraded service never runs a stale page.
CACHE_CONTROL = "no-cache"

router = APIRouter(include_in_schema=False)
_files = StaticFiles(directory=WEB_DIR, check_dir=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        WEB_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": CACHE_CONTROL,
        },
    )


class PageConfig(BaseModel):
    """What the page needs to know about this service that no API endpoint says."""

    api_key_hint: str
    #: Whether the service follows the broker's packet log (the protocol inspector has data).
    protocol_log: bool
    #: The broker's MQTT-over-WebSocket address, for /join.
    broker_ws_url: str | None


@router.get("/dashboard/config.json")
async def page_config(settings: SettingsDep) -> PageConfig:
    hint = settings.api_key_hint
    if hint is None:
        hint = (
            "FACTORY_API_KEY on the service"
            if settings.api_key
            else "none is set (FACTORY_API_KEY)"
        )
    return PageConfig(
        api_key_hint=hint,
        protocol_log=settings.broker_log_path is not None,
        broker_ws_url=settings.broker_ws_url,
    )


@router.get("/join")
async def join() -> FileResponse:
    """The participant page: a browser MQTT client (vendored MQTT.js) for workshops."""
    return FileResponse(
        WEB_DIR / "join.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": JOIN_CONTENT_SECURITY_POLICY,
            "Cache-Control": CACHE_CONTROL,
        },
    )


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    # Browsers ask for it on any page without an icon link (e.g. /docs): answer, not 404.
    return FileResponse(WEB_DIR / "favicon.svg", media_type="image/svg+xml")


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static(path: str, request: Request) -> Response:
    # StaticFiles does the file serving (ETag, 304, range, HEAD) and refuses paths leaving WEB_DIR.
    response = await _files.get_response(os.path.normpath(path), request.scope)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
