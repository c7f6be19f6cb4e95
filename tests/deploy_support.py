"""What the compose and Kubernetes checks read from the code: the Dockerfile's targets and the
extras each one installs, the settings' variable names, and the Prometheus series the
services export. Parsed from source, so nothing heavy is imported."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
IMAGE_PREFIX = "dalston-"  # image `dalston-<target>` is the Dockerfile's target <target>
SERVICE_PACKAGES = ("gateway", "orchestrator", "session_router", "engines", "realtime_worker", "shared", "dalston")


@dataclass
class Stage:
    name: str
    base: str  # another stage's name, or an image
    extras: set[str] = field(default_factory=set)  # pip install "/src[<extras>]"
    pip_packages: set[str] = field(default_factory=set)  # other packages pip installs by name
    venv_from: str | None = None  # COPY --from=<stage> /opt/venv
    copies: list[tuple[str, str, str]] = field(default_factory=list)  # COPY --from=<stage> <src> <dst>
    runs: list[str] = field(default_factory=list)
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


@cache
def stages() -> dict[str, Stage]:
    found: dict[str, Stage] = {}
    current: Stage | None = None
    build_args: dict[str, str] = {}  # the global ARGs' defaults, which FROM lines may use
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, re.I)
            assert match, f"every stage is named: FROM {rest}"
            base = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m[1]], match[1])
            current = found[match[2]] = Stage(match[2], base)
        elif current is None:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                build_args[name] = default
        elif keyword == "WORKDIR":
            current.workdir = rest
        elif keyword == "RUN":
            current.runs += [c.strip() for c in re.split(r"&&|;", rest)]
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if words[:2] != ["pip", "install"]:
                    continue
                for word in words[2:]:
                    if word.startswith("/src"):
                        extras = re.fullmatch(r"/src(?:\[([^\]]*)\])?", word)
                        assert extras, f"unexpected install target {word}"
                        current.extras |= set(filter(None, (extras[1] or "").split(",")))
                    elif not word.startswith("-") and not word.startswith("http"):
                        current.pip_packages.add(re.split(r"[=<>\[]", word)[0].lower())
        elif keyword == "COPY":
            match = re.fullmatch(r"--from=(\S+)\s+(\S+)\s+(\S+)", rest)
            if match:
                current.copies.append((match[1], match[2], match[3]))
                if match[2] == "/opt/venv":
                    current.venv_from = match[1]
        elif keyword == "ENV":
            current.env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
        elif keyword == "CMD":
            current.cmd = list(ast.literal_eval(rest))
    return found


def chain(name: str) -> list[Stage]:
    """The stage and every stage it is built from or takes its venv from."""
    all_stages = stages()
    result: list[Stage] = []
    todo = [name]
    while todo:
        stage = all_stages[todo.pop()]
        result.append(stage)
        todo += [s for s in (stage.base, stage.venv_from) if s in all_stages]
    return result


def targets() -> set[str]:
    """Stages meant to be run: they set a CMD (build stages and bases do not)."""
    return {name for name in stages() if cmd_of(name)}


def cmd_of(target: str) -> list[str]:
    for stage in chain(target):
        if stage.cmd:
            return stage.cmd
    return []


def extras_of(target: str) -> set[str]:
    return set().union(*(s.extras for s in chain(target)))


def pip_packages_of(target: str) -> set[str]:
    return set().union(*(s.pip_packages for s in chain(target)))


def env_of_target(target: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(chain(target)):
        env.update(stage.env)
    return env


def target_of_image(image: str) -> str | None:
    """`dalston-core:latest` or `registry/dalston-core` -> `core`; None for other images."""
    name = image.rpartition("/")[2].partition(":")[0]
    return name.removeprefix(IMAGE_PREFIX) if name.startswith(IMAGE_PREFIX) else None


@cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def extra_requirements(extra: str) -> list[str]:
    return pyproject()["project"]["optional-dependencies"][extra]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s=<>!~\[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def setting_names() -> set[str]:
    return {f"DALSTON_{name.upper()}" for name in Settings.model_fields}


def module_exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def packaged(module: str) -> bool:
    """Whether the images' (non-editable) install carries `module`: pyproject's package list."""
    patterns = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    top = module.partition(".")[0]
    return any(re.fullmatch(p.replace("*", ".*"), top) for p in patterns)


# What prometheus_client exposes for a metric of each type, by the name it was given.
SUFFIXES = {"Counter": ("_total", "_created"), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count", "_created")}


@cache
def exported_series() -> frozenset[str]:
    """Every series name the services' prometheus_client metrics expose."""
    names: set[str] = set()
    for package in SERVICE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                    continue
                kind = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if kind in SUFFIXES and isinstance(node.args[0].value, str):
                    base = node.args[0].value.removesuffix("_total") if kind == "Counter" else node.args[0].value
                    names |= {base + suffix for suffix in SUFFIXES[kind]}
    return frozenset(names)
