"""The operators' console in a real browser against the whole fleet.

Runs console/e2e/console.e2e.mjs (Node + playwright-core driving the system's Chromium):
log in, dashboard, upload through the New page, the job page until completed, a word
click seeks the player, the srt export, every page free of console errors, delete,
logout. Screenshots of each page go to bench/out/console-screenshots/.

Needs Node 20+ with console/node_modules installed (`npm --prefix console ci`) and
Chromium at /usr/bin/chromium (or $CHROMIUM); the console is built here when
console/dist is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import API_KEY, ROOT, RunningFleet, start_fleet

pytestmark = pytest.mark.e2e

CONSOLE = ROOT / "console"
SCRIPT = CONSOLE / "e2e" / "console.e2e.mjs"
SCREENSHOTS = ROOT / "bench" / "out" / "console-screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    """The default fleet, but allowed to deliver webhooks to this machine: the webhooks step
    redelivers to a receiver it runs on 127.0.0.1."""
    yield from start_fleet("fs", tmp_path_factory.mktemp("fleet-console"), {"DALSTON_ALLOW_PRIVATE_URLS": "true"})


def _require_tools() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    if not (CONSOLE / "node_modules" / "playwright-core").is_dir():
        pytest.skip("console dependencies are not installed (npm --prefix console ci)")
    return node


def _ensure_built() -> None:
    if (CONSOLE / "dist" / "index.html").is_file():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to build the console"
    build = subprocess.run([npm, "--prefix", str(CONSOLE), "run", "build"], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"console build failed:\n{build.stdout}\n{build.stderr}"


def test_console_in_a_browser(fleet: RunningFleet) -> None:
    node = _require_tools()
    _ensure_built()
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    env = {
        **os.environ,
        "BASE_URL": fleet.base_url,
        "API_KEY": API_KEY,
        "SCREENSHOT_DIR": str(SCREENSHOTS),
        "CHROMIUM": CHROMIUM,
        "JOB_TIMEOUT_S": "120",
    }
    run = subprocess.run([node, str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1080)
    output = f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"
    assert run.returncode == 0, f"console e2e failed (exit {run.returncode}); screenshots in {SCREENSHOTS}\n{output}"
    print(output)
    for name in ("01-login", "03-dashboard-before", "07-job", "08-jobs", "10-dashboard", "11-new-empty"):
        assert (SCREENSHOTS / f"{name}.png").is_file(), f"missing screenshot {name}.png"
