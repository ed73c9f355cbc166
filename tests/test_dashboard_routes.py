"""The dashboard's routes over HTTP (no broker, no browser): the page, its static files, the
offline guarantee (no third-party origin anywhere) and the vendored licences."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from api.routes import dashboard
from api.serve import BackgroundServer
from dashboards import WEB_DIR

IMPORT = re.compile(r"""^\s*import\s[^"']*["'](\.[^"']+)["']""", re.MULTILINE)
ASSET = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """Real HTTP to an app holding only the dashboard router (it needs nothing else)."""
    app = FastAPI()
    app.include_router(dashboard.router)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        yield http


def test_the_page_is_served_at_the_root_with_a_same_origin_policy(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert '<script type="module" src="/static/js/main.js">' in response.text


def test_every_asset_and_module_import_resolves(client: httpx.Client) -> None:
    page = client.get("/").text
    assets = ASSET.findall(page)
    assert "/static/js/main.js" in assets
    join = ASSET.findall(client.get("/join").text)  # the participant page is a second entry
    assert "/static/js/join.js" in join
    assets += join
    todo, seen = list(assets), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code == 200, path
        if path.endswith(".js"):
            assert "javascript" in response.headers["content-type"], path
            base = path.rsplit("/", 1)[0]
            for relative in IMPORT.findall(response.text):
                parts = f"{base}/{relative}".split("/")
                resolved: list[str] = []
                for part in parts:
                    if part == "..":
                        resolved.pop()
                    elif part != ".":
                        resolved.append(part)
                todo.append("/".join(resolved))
    modules = {p for p in seen if p.startswith("/static/js/")}
    on_disk = {f"/static/js/{p.name}" for p in (WEB_DIR / "js").glob("*.js")}
    assert modules == on_disk, "a module is never imported, or imported but missing"
    assert "/static/vendor/uplot/uPlot.esm.js" in seen
    assert "/static/vendor/mqtt/mqtt.esm.js" in seen


@pytest.mark.parametrize(
    "path",
    [
        "/static/../api/app.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/nope.js",
        "/static/",
    ],
)
def test_nothing_outside_the_web_dir_is_served(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_static_files_revalidate_with_etags(client: httpx.Client) -> None:
    first = client.get("/static/css/dashboard.css")
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(
        "/static/css/dashboard.css", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304


def test_the_dashboard_is_not_part_of_the_api_schema(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/static")]


def test_no_third_party_origin_is_referenced() -> None:
    # Everything is vendored: the page must work on a laptop with no network at all.
    for path in [WEB_DIR / "index.html", *WEB_DIR.glob("js/*.js"), *WEB_DIR.glob("css/*.css")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{path.name} refers to another origin"


def test_every_vendored_library_has_its_licence_and_is_listed() -> None:
    readme = (WEB_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    libraries = [p for p in (WEB_DIR / "vendor").iterdir() if p.is_dir()]
    assert libraries
    for library in libraries:
        assert (library / "LICENSE").is_file(), f"{library.name} has no LICENSE next to it"
        assert f"`{library.name}/`" in readme, f"{library.name} is not listed in vendor/README.md"
