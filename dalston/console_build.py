"""Building the console SPA (`console/`) for `dalston up`.

The gateway serves `console/dist`; `dalston up` rebuilds it when it is missing or older
than its sources, so a checkout that pulled front-end changes serves them. Node.js is not
a requirement of the API: without `npm`, or when the build fails, the fleet starts anyway
and the console page says how to build it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
BUILD_COMMAND = "npm --prefix console ci && npm --prefix console run build"
NO_NPM = (
    "the console is not built and Node.js/npm is not installed: install Node 20+ and run `dalston up` again, "
    f"or build it elsewhere with `{BUILD_COMMAND}`"
)


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.is_file() else 0.0


# What the build reads: these files, and every file under SOURCE_DIRS (public/ is copied into dist).
SOURCE_FILES = ("index.html", "package.json", "package-lock.json")
SOURCE_GLOBS = ("vite.config.*", "tsconfig*.json", "postcss.config.*", "tailwind.config.*")
SOURCE_DIRS = ("src", "public")


def newest_source(console: Path) -> float:
    """The modification time of the newest file the build reads (0 when there is none)."""
    files = [console / name for name in SOURCE_FILES]
    for pattern in SOURCE_GLOBS:
        files += console.glob(pattern)
    for directory in SOURCE_DIRS:
        if (console / directory).is_dir():
            files += (p for p in (console / directory).rglob("*") if p.is_file())
    return max((_mtime(p) for p in files), default=0.0)


def needs_build(console: Path) -> bool:
    """Whether `console/dist/index.html` is missing or older than any source."""
    if not (console / "package.json").is_file():
        return False  # no console in this install (e.g. a wheel): nothing to build
    index = console / "dist" / "index.html"
    return not index.is_file() or newest_source(console) > _mtime(index)


def needs_install(console: Path) -> bool:
    """Whether dependencies must be installed: none yet, or the lock file changed since
    (npm writes node_modules/.package-lock.json on every install)."""
    installed = console / "node_modules" / ".package-lock.json"
    return not installed.is_file() or _mtime(console / "package-lock.json") > _mtime(installed)


def _run(argv: list[str], cwd: Path, say: Callable[[str], None]) -> int:
    """Run `argv`, streaming its output through `say`; its exit status (127: could not start)."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        say(f"could not run {' '.join(argv)}: {exc}")
        return 127
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            say(line.rstrip())
    return proc.wait()


def build_console(say: Callable[[str], None], console: Path = CONSOLE_DIR) -> bool:
    """Build the console when it is stale. False when it is left unbuilt or stale (said why)."""
    if not needs_build(console):
        return True
    npm = shutil.which("npm")
    if npm is None:
        say(NO_NPM)
        return False
    steps = []
    if needs_install(console):
        # `npm ci` installs exactly the lock file; without one there is nothing to be exact about.
        steps.append([npm, "ci"] if (console / "package-lock.json").is_file() else [npm, "install"])
    steps.append([npm, "run", "build"])
    for argv in steps:
        command = "npm " + " ".join(argv[1:])
        say(f"building the console: {command} in {console}")
        status = _run(argv, console, say)
        if status != 0:
            say(
                f"the console build failed ({command} exited with {status}); starting without it (the API works). "
                f"Fix the error above and run `dalston up` again, or build it with `{BUILD_COMMAND}`"
            )
            return False
    say(f"console built: {console / 'dist'}")
    return True
