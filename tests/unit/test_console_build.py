"""`dalston up`'s console build: when it is stale, when to install, and what it says
without npm or when the build fails. A fake `npm` stands in for Node.js."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dalston import console_build
from dalston.console_build import build_console, needs_build, needs_install


def touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.name)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def console(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    for name in ("package.json", "package-lock.json", "index.html", "vite.config.ts", "src/main.tsx", "src/pages/Jobs.tsx"):
        touch(root / name, 1000.0)
    return root


def test_no_console_sources_means_nothing_to_build(tmp_path: Path) -> None:
    assert not needs_build(tmp_path)
    assert build_console(lambda line: pytest.fail(line), tmp_path)


def test_missing_build_is_stale(console: Path) -> None:
    assert needs_build(console)
    touch(console / "dist" / "index.html", 2000.0)
    assert not needs_build(console)


@pytest.mark.parametrize(
    "source",
    [
        "src/pages/Jobs.tsx",
        "src/new/Deep.tsx",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.app.json",
        "postcss.config.cjs",
        "public/favicon.svg",
    ],
)
def test_a_newer_source_makes_the_build_stale(console: Path, source: str) -> None:
    touch(console / "dist" / "index.html", 2000.0)
    touch(console / source, 3000.0)
    assert needs_build(console)


def test_files_the_build_does_not_read_do_not_count(console: Path) -> None:
    touch(console / "dist" / "index.html", 2000.0)
    touch(console / "README.md", 3000.0)
    touch(console / "node_modules" / "left-pad" / "index.js", 3000.0)
    touch(console / "dist" / "assets" / "app-abc123.js", 3000.0)
    touch(console / "e2e" / "login.spec.ts", 3000.0)
    assert not needs_build(console)


def test_install_only_when_missing_or_the_lock_changed(console: Path) -> None:
    assert needs_install(console)  # no node_modules
    (console / "node_modules").mkdir()
    assert needs_install(console)  # no record of an install
    touch(console / "node_modules" / ".package-lock.json", 2000.0)
    assert not needs_install(console)
    touch(console / "package-lock.json", 3000.0)
    assert needs_install(console)


def test_without_npm_it_says_how_and_goes_on(console: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_build.shutil, "which", lambda name: None)
    said: list[str] = []
    assert build_console(said.append, console) is False
    assert said == [console_build.NO_NPM]
    assert "Node 20+" in said[0] and "npm --prefix console ci && npm --prefix console run build" in said[0]


def fake_npm(bin_dir: Path, *, fail_build: bool = False) -> Path:
    """An `npm` that logs its arguments and does what ci/build would leave behind."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "npm"
    build = 'echo "error TS2322: boom" >&2; exit 2' if fail_build else "mkdir -p dist && echo '<html>' > dist/index.html"
    script.write_text(
        "#!/bin/sh\n"
        'echo "npm $*" >> calls.log\n'
        'echo "output of npm $*"\n'
        'if [ "$1" = ci ]; then mkdir -p node_modules && touch node_modules/.package-lock.json; fi\n'
        f'if [ "$1" = run ]; then {build}; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_builds_installing_first_and_streams_output(console: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_npm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    said: list[str] = []
    assert build_console(said.append, console) is True
    assert (console / "calls.log").read_text().splitlines() == ["npm ci", "npm run build"]
    assert "output of npm ci" in said and "output of npm run build" in said
    assert (console / "dist" / "index.html").is_file() and not needs_build(console)

    # Up to date: nothing runs. A changed source: build again, without reinstalling.
    (console / "calls.log").unlink()
    assert build_console(said.append, console) is True and not (console / "calls.log").exists()
    touch(console / "src" / "main.tsx", (console / "dist" / "index.html").stat().st_mtime + 10)
    assert build_console(said.append, console) is True
    assert (console / "calls.log").read_text().splitlines() == ["npm run build"]


def test_a_failed_build_is_reported_not_raised(console: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_npm(tmp_path / "bin", fail_build=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    said: list[str] = []
    assert build_console(said.append, console) is False
    assert "error TS2322: boom" in said
    assert "the console build failed (npm run build exited with 2)" in said[-1] and "the API works" in said[-1]
