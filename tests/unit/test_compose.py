"""No Docker engine runs here, so the compose files are checked against the code instead:
every build context, command, env var and dependency must point at something real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import catalogue
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker-compose.yml"
GPU = ROOT / "docker-compose.gpu.yml"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def services(path: Path) -> dict[str, dict[str, Any]]:
    return load(path)["services"]


def all_services() -> list[tuple[str, str, dict[str, Any]]]:
    return [(p.name, name, svc) for p in (BASE, GPU) for name, svc in services(p).items()]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def module_exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def test_compose_files_parse() -> None:
    assert services(BASE)
    assert services(GPU)


@pytest.mark.parametrize(("file", "name", "service"), all_services(), ids=lambda v: v if isinstance(v, str) else "")
def test_build_context_and_dockerfile_exist(file: str, name: str, service: dict[str, Any]) -> None:
    build = service.get("build")
    if build is None:
        assert service.get("image"), f"{file}:{name} has neither build nor image"
        return
    if isinstance(build, str):
        build = {"context": build}
    context = ROOT / build.get("context", ".")
    assert context.is_dir(), f"{file}:{name}: build context {context} is missing"
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.is_file(), f"{file}:{name}: {dockerfile} is missing"
    for arg in build.get("args") or {}:
        assert re.search(rf"^ARG {arg}\b", dockerfile.read_text(), re.M), f"{dockerfile} does not declare ARG {arg}"


@pytest.mark.parametrize(("file", "name", "service"), all_services(), ids=lambda v: v if isinstance(v, str) else "")
def test_commands_point_at_real_code(file: str, name: str, service: dict[str, Any]) -> None:
    command = command_of(service)
    if not command:
        return
    if command[:2] == ["python", "-m"]:
        module = command[2]
        assert module_exists(module), f"{file}:{name}: module {module} does not exist"
        if "--engine" in command:
            engine = command[command.index("--engine") + 1]
            assert engine in catalogue.ENGINES, f"{file}:{name}: engine {engine!r} is not in the stage catalogue"
            entry_module = catalogue.engine(engine).entry.partition(":")[0]
            assert module_exists(entry_module), f"{file}:{name}: {engine}'s module {entry_module} does not exist"
    elif command[0] == "dalston":
        from typer.testing import CliRunner

        from dalston.cli import app

        # --help parses everything before it: an unknown command or option fails.
        result = CliRunner().invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{file}:{name}: {command} is not a dalston command line: {result.output}"
    # Anything else must be an infrastructure image's own program.
    elif "dalston" in str(service.get("image", "")):
        pytest.fail(f"{file}:{name}: unexpected command {command}")


def test_every_dalston_env_var_is_a_setting() -> None:
    fields = {f"DALSTON_{name.upper()}" for name in Settings.model_fields}
    for file, name, service in all_services():
        for key in env_of(service):
            if key.startswith("DALSTON_"):
                assert key in fields, f"{file}:{name}: {key} is not a field of shared.settings.Settings"


def test_dependencies_exist_and_conditions_hold() -> None:
    base = services(BASE)
    for file, name, service in all_services():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            assert target in base, f"{file}:{name} depends on unknown service {target}"
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert base[target].get("healthcheck"), f"{name} waits for {target} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert base[target].get("restart", "no") == "no", f"one-shot {target} must not restart"


def test_core_services_are_present_and_wired() -> None:
    base = services(BASE)
    expected = {
        "postgres", "redis", "minio", "minio-init", "migrate",
        "gateway", "orchestrator", "engine-prepare", "engine-faster-whisper", "engine-merge",
    }  # fmt: skip
    assert expected <= set(base)
    assert "--appendonly" in command_of(base["redis"])
    assert command_of(base["migrate"]) == ["dalston", "migrate"]
    for name in expected - {"postgres", "redis", "minio", "minio-init"}:
        env = env_of(base[name])
        assert env["DALSTON_STORAGE_BACKEND"] == "s3"
        assert env["DALSTON_DATABASE_URL"].startswith("postgresql://")
        assert env["DALSTON_REDIS_URL"].startswith("redis://")
        assert env["DALSTON_S3_ENDPOINT_URL"] == "http://minio:9000"
    # Compose runs the same engines as `dalston up`: the catalogue's autostart ones.
    engines = {command_of(s)[-1] for s in base.values() if "--engine" in command_of(s)}
    assert engines == {e.id for e in catalogue.ENGINES.values() if e.autostart}


def test_gpu_overlay_targets_faster_whisper_on_cuda() -> None:
    base, gpu = services(BASE), services(GPU)
    assert set(gpu) <= set(base)
    whisper = gpu["engine-faster-whisper"]
    assert env_of(whisper)["DALSTON_WHISPER_DEVICE"] == "cuda"
    devices = whisper["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def test_engines_run_where_the_catalogue_says_they_can() -> None:
    """GPU overrides only for engines that can use a GPU; the image installs every engine's extra."""
    for name in services(GPU):
        command = command_of(services(BASE)[name])
        if "--engine" in command:
            assert catalogue.engine(command[-1]).gpu, f"{name}: {command[-1]} cannot run on a GPU"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    installed = set(re.findall(r'pip install "/app\[([^\]]*)\]"', dockerfile)[0].split(","))
    for service in services(BASE).values():
        command = command_of(service)
        if "--engine" in command:
            extra = catalogue.engine(command[-1]).extra
            assert extra is None or extra in installed, f"{command[-1]} needs the {extra!r} extra, which the image lacks"
