"""Serving the console's build at /console: SPA fallback, caching, gzip, traversal, no build.

The app is driven in-process without its lifespan: these routes touch no database."""

from __future__ import annotations

import html
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.console.spa import serve
from gateway.errors import ApiError
from shared.settings import Settings

INDEX = "<!doctype html><html><head><script type=module src=/console/assets/app-abc123.js></script></head></html>"
SCRIPT = "console.log('dalston console');\n" * 200  # big enough to be worth compressing


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc123.js").write_text(SCRIPT)
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return root


def client(console_dir: Path) -> httpx.AsyncClient:
    app = create_app(Settings(database_url="postgresql://unused/unused", console_dir=console_dir))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_index_and_spa_fallback(dist: Path) -> None:
    async with client(dist) as c:
        for path in ("/console", "/console/", "/console/jobs/3f0c", "/console/index.html", "/console/settings?tab=keys"):
            response = await c.get(path)
            assert response.status_code == 200, path
            assert response.text == INDEX and response.headers["content-type"].startswith("text/html")
            assert response.headers["cache-control"] == "no-cache", path


async def test_hashed_assets_are_immutable_and_gzipped(dist: Path) -> None:
    async with client(dist) as c:
        response = await c.get("/console/assets/app-abc123.js", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200 and response.text == SCRIPT
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-encoding"] == "gzip" and "javascript" in response.headers["content-type"]
        assert int(response.headers["content-length"]) < len(SCRIPT) // 10
        raw = await c.get("/console/assets/app-abc123.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.text == SCRIPT
        # Another build's asset is missing, not index.html in disguise.
        missing = await c.get("/console/assets/app-old999.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        # Other files in the build are served, but revalidated.
        icon = await c.get("/console/favicon.svg")
        assert icon.status_code == 200 and icon.headers["cache-control"] == "no-cache"


async def test_only_the_console_is_gzipped(dist: Path) -> None:
    async with client(dist) as c:
        schema = await c.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert schema.status_code == 200 and len(schema.content) > 1024 and "content-encoding" not in schema.headers


async def test_paths_out_of_the_build_are_refused(dist: Path) -> None:
    async with client(dist) as c:
        for path in ("/console/%2e%2e/secret.txt", "/console/..%2fsecret.txt", "/console/assets/%2e%2e/%2e%2e/secret.txt"):
            response = await c.get(path)
            assert response.status_code == 404 and "not for the browser" not in response.text, path
        (dist / "link.txt").symlink_to(dist.parent / "secret.txt")
        linked = await c.get("/console/link.txt")
        assert linked.status_code == 404 and "not for the browser" not in linked.text


async def test_no_build_answers_503_with_how_to_build(tmp_path: Path) -> None:
    async with client(tmp_path / "nowhere") as c:
        for path in ("/console", "/console/jobs"):
            response = await c.get(path)
            assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
            assert html.escape("npm --prefix console ci && npm --prefix console run build") in response.text


def test_default_console_dir_is_the_checkouts_console_dist() -> None:
    assert Settings().console_dir == Path(__file__).resolve().parents[2] / "console" / "dist"


@pytest.mark.parametrize("path", ["../secret.txt", "assets/../../secret.txt", "/etc/passwd", "nul\x00byte"])
def test_serve_refuses_paths_out_of_the_build(dist: Path, path: str) -> None:
    with pytest.raises(ApiError) as refused:
        serve(dist, path)
    assert refused.value.status == 404
