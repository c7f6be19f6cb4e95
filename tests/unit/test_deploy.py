"""The Kubernetes manifests (deploy/k8s) and the monitoring files (deploy/monitoring), checked
offline: Kubernetes' own JSON schemas (kubernetes-validate), KEDA's fields as its CRDs and
scalers define them, and everything they name against the code: settings, streams and
consumer groups, engines and the extras their images install, commands, probes and the
metrics the services export. With kubectl present the overlays are rendered and checked too;
with promtool present the alert rules are checked and their unit tests run."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from deploy_support import (
    ROOT,
    exported_series,
    extras_of,
    module_exists,
    packaged,
    setting_names,
    target_of_image,
    targets,
)

from shared import catalogue, keys
from shared.settings import Settings

K8S = ROOT / "deploy" / "k8s"
MONITORING = ROOT / "deploy" / "monitoring"
SECRETS = K8S / "secret.example.yaml"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
# The oldest Kubernetes the manifests claim (README) and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
COMPONENT_LABEL = "app.kubernetes.io/component"

Doc = dict[str, Any]


# --- loading ----------------------------------------------------------------------------------


def load_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(folder: Path) -> Doc:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def listed_files(folder: Path) -> Iterator[Path]:
    """The manifest files a kustomization (or component) includes, following folders."""
    spec = kustomization(folder)
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        path = (folder / entry).resolve()
        if path.is_dir():
            yield from listed_files(path)
        else:
            yield path


@cache
def manifests() -> list[tuple[str, Doc]]:
    """Every resource of the base and of every component, with the file it is in."""
    folders = [K8S / "base", *sorted((K8S / "components").iterdir())]
    return [(str(f.relative_to(ROOT)), d) for folder in folders for f in listed_files(folder) for d in load_all(f)]


def docs(kind: str | None = None) -> list[Doc]:
    return [d for _, d in manifests() if kind is None or d["kind"] == kind]


def by_name(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs(kind)}


def secrets() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["stringData"] for d in load_all(SECRETS)}


def config_data() -> dict[str, str]:
    """dalston-config as the models component leaves it (base data + its patch)."""
    data = dict(by_name("ConfigMap")["dalston-config"]["data"])
    for patch in (K8S / "components").glob("*/config-patch.yaml"):
        data |= load_all(patch)[0]["data"]
    return data


def pod_templates() -> list[tuple[str, Doc]]:
    """(workload name, pod spec) of every Deployment and Job."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in docs() if d["kind"] in ("Deployment", "Job")]


def containers() -> list[tuple[str, Doc]]:
    return [(name, c) for name, spec in pod_templates() for c in spec["containers"]]


def engine_of(container: Doc) -> str | None:
    command = container.get("command", [])
    return command[command.index("--engine") + 1] if "--engine" in command else None


def probe_args(container: Doc) -> list[str] | None:
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command", [])
        if "shared.consumer_probe" in command:
            return command[command.index("shared.consumer_probe") + 1 :]
    return None


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def deployments_selected(selector: dict[str, str]) -> list[str]:
    return [n for n, d in by_name("Deployment").items() if matches(selector, d["spec"]["template"]["metadata"]["labels"])]


def test_every_manifest_file_is_part_of_a_kustomization() -> None:
    """A file no kustomization lists would never be applied, and never checked below."""
    for folder in [K8S / "base", *(K8S / "components").iterdir(), *(K8S / "overlays").iterdir()]:
        spec = kustomization(folder)
        used = {*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))}
        for path in folder.glob("*.yaml"):
            assert path.name == "kustomization.yaml" or path.name in used, f"{path.relative_to(ROOT)} is in no kustomization"


# --- Kubernetes' schemas ----------------------------------------------------------------------

STANDARD_API = re.compile(r"^(v1|apps/v1|batch/v1|policy/v1)$")


def standard_docs() -> list[tuple[str, Doc]]:
    found = [(f, d) for f, d in manifests() if STANDARD_API.match(d["apiVersion"])]
    found += [(str(SECRETS.relative_to(ROOT)), d) for d in load_all(SECRETS)]
    return found


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    ("file", "doc"), standard_docs(), ids=[f"{d['kind']}/{d['metadata']['name']}" for _, d in standard_docs()]
)
def test_resources_match_the_kubernetes_schemas(file: str, doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{file}: {doc['kind']}/{doc['metadata']['name']} is not valid Kubernetes {version}: {exc.message}")


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """Strict validation: a field Kubernetes does not know fails (the API server would drop it)."""
    gateway = copy.deepcopy(by_name("Deployment")["gateway"])
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(gateway, K8S_VERSIONS[0], strict=True)


# --- KEDA -------------------------------------------------------------------------------------

# The fields of KEDA's CRDs (keda.sh/v1alpha1, config/crd/bases in kedacore/keda) that these
# manifests use, with unknown fields refused as the API server's pruning would drop them.
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
NAME_REF = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {"name": {"type": "string"}}}
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": NAME_REF,
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"behavior": {"type": "object"}},  # checked as an HPA's below
                        }
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"enum": ["redis-streams", "prometheus"]},
                            "metadata": STRING_MAP,
                            "authenticationRef": NAME_REF,
                        },
                    },
                },
            },
        },
    },
}
TRIGGER_AUTHENTICATION = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "additionalProperties": False,
                        "properties": {"parameter": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}},
                    },
                }
            },
        },
    },
}
# Trigger metadata each scaler reads (the `keda:"name=..."` tags of pkg/scalers/redis_streams_scaler.go,
# redis_scaler.go and prometheus_scaler.go), and what each requires.
TRIGGER_METADATA = {
    "redis-streams": (
        {"stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
         "databaseIndex", "enableTLS", "unsafeSsl", "address", "host", "port", "username", "password"},
        {"stream"},
    ),
    "prometheus": (
        {"serverAddress", "query", "threshold", "activationThreshold", "namespace", "ignoreNullValues", "unsafeSsl", "timeout"},
        {"serverAddress", "query", "threshold"},
    ),
}  # fmt: skip
REDIS_AUTH_PARAMETERS = {"address", "host", "port", "username", "password"}


@pytest.mark.parametrize("so", docs("ScaledObject"), ids=lambda d: d["metadata"]["name"])
def test_scaled_objects_match_kedas_schema(so: Doc) -> None:
    jsonschema.validate(so, SCALED_OBJECT)
    behavior = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is not None:  # KEDA hands it to the HPA it makes: Kubernetes' own schema applies
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "check"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "check"}, "maxReplicas": 2, "behavior": behavior},
        }
        kubernetes_validate.validate(hpa, K8S_VERSIONS[0], strict=True)
    auths = by_name("TriggerAuthentication")
    for trigger in so["spec"]["triggers"]:
        allowed, required = TRIGGER_METADATA[trigger["type"]]
        metadata = set(trigger["metadata"])
        assert metadata <= allowed, f"{so['metadata']['name']}: KEDA's {trigger['type']} reads no {metadata - allowed}"
        assert required <= metadata, f"{so['metadata']['name']}: {trigger['type']} needs {required - metadata}"
        if "authenticationRef" in trigger:
            assert trigger["authenticationRef"]["name"] in auths
    assert so["spec"].get("minReplicaCount", 0) <= so["spec"].get("maxReplicaCount", 100)


def test_the_keda_schema_catches_a_misspelt_field() -> None:
    so = copy.deepcopy(docs("ScaledObject")[0])
    so["spec"]["minReplicas"] = so["spec"].pop("minReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, SCALED_OBJECT)


def test_trigger_authentication_reads_secrets_that_exist() -> None:
    for auth in docs("TriggerAuthentication"):
        jsonschema.validate(auth, TRIGGER_AUTHENTICATION)
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["parameter"] in REDIS_AUTH_PARAMETERS, ref
            assert ref["key"] in secrets().get(ref["name"], {}), f"{SECRETS.name} has no {ref['name']}/{ref['key']}"


# --- names, labels, selectors -----------------------------------------------------------------


def test_names_are_unique_and_labels_consistent() -> None:
    seen: set[tuple[str, str]] = set()
    for file, doc in manifests():
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{file}: {key} is defined twice"
        seen.add(key)
    for kind in ("Deployment", "Job"):
        for name, doc in by_name(kind).items():
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels == {**labels, "app.kubernetes.io/name": "dalston", COMPONENT_LABEL: name}, f"{kind}/{name}: {labels}"
            assert doc["metadata"]["labels"][COMPONENT_LABEL] == name
            if kind == "Deployment":
                assert matches(doc["spec"]["selector"]["matchLabels"], labels), f"{name}: selector misses its own pods"


def test_services_and_pdbs_select_exactly_one_deployment() -> None:
    for kind, selector_of in (
        ("Service", lambda d: d["spec"]["selector"]),
        ("PodDisruptionBudget", lambda d: d["spec"]["selector"]["matchLabels"]),
    ):
        for name, doc in by_name(kind).items():
            assert deployments_selected(selector_of(doc)) == [name], (
                f"{kind}/{name} selects {deployments_selected(selector_of(doc))}"
            )
    for name, service in by_name("Service").items():
        pod = by_name("Deployment")[name]["spec"]["template"]["spec"]
        ports = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, f"Service/{name} targets a port its pods lack"


def test_keda_owns_the_replicas_of_what_it_scales_and_spares_are_budgeted() -> None:
    deployments, scaled = by_name("Deployment"), {d["spec"]["scaleTargetRef"]["name"] for d in docs("ScaledObject")}
    assert scaled <= set(deployments), f"ScaledObjects for no Deployment: {scaled - set(deployments)}"
    budgets = set(by_name("PodDisruptionBudget"))
    for name, doc in deployments.items():
        if name in scaled:
            assert "replicas" not in doc["spec"], f"{name}: KEDA owns its replicas; `replicas` would reset them on every apply"
        else:
            assert doc["spec"].get("replicas"), f"{name}: neither replicas nor a ScaledObject"
        if name in scaled or doc["spec"].get("replicas", 1) > 1:
            assert name in budgets, f"{name} runs several pods and has no PodDisruptionBudget"


# --- settings, secrets, volumes ---------------------------------------------------------------


def test_every_env_name_is_a_setting_or_feeds_the_command() -> None:
    fields = setting_names()
    for key in config_data():
        assert key in fields, f"dalston-config: {key} is not a field of shared.settings.Settings"
    for key in secrets()["dalston-secrets"]:
        assert key in fields, f"{SECRETS.name}: {key} is not a field of shared.settings.Settings"
    for workload, container in containers():
        if target_of_image(container["image"]) is None:
            continue  # another project's image: its own variables (checked with that image below)
        for env in container.get("env", []):
            name = env["name"]
            if name.startswith("DALSTON_"):
                assert name in fields, f"{workload}: {name} is not a setting"
            else:
                assert f"$({name})" in " ".join(container["command"]), f"{workload}: {name} is set and never used"


def test_settings_parse_as_the_pods_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in setting_names():
        monkeypatch.delenv(key, raising=False)
    for key, value in (config_data() | secrets()["dalston-secrets"]).items():
        monkeypatch.setenv(key, value)
    for _, container in containers():
        for env in container.get("env", []):
            if env["name"].startswith("DALSTON_"):
                monkeypatch.setenv(env["name"], env["value"])
                Settings(_env_file=None)
    settings = Settings(_env_file=None)
    assert settings.storage_backend == "s3"
    assert settings.redis_url.startswith("redis://") and settings.database_url.startswith("postgresql://")
    # The redis-streams triggers read database 0: the services must use it too.
    assert settings.redis_url.rsplit("/", 1)[1] == "0"
    for so in docs("ScaledObject"):
        for trigger in so["spec"]["triggers"]:
            if trigger["type"] == "redis-streams":
                assert trigger["metadata"]["databaseIndex"] == "0"


def test_env_sources_and_volumes_exist() -> None:
    configmaps, claims = set(by_name("ConfigMap")), set(by_name("PersistentVolumeClaim"))
    for workload, spec in pod_templates():
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, workload
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets(), f"{workload}: {SECRETS.name} has no {source['secretRef']}"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets().get(ref["name"], {}), f"{workload}: no secret key {ref}"
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])}, workload
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, workload


# --- images, commands, probes -----------------------------------------------------------------


def test_images_are_dockerfile_targets() -> None:
    for workload, container in containers():
        image = container["image"]
        target = target_of_image(image)
        # Every series the alerts read is Dalston's own: no third-party exporter runs here.
        assert target is not None, f"{workload}: {image} is no Dockerfile target"
        assert target in targets(), f"{workload}: no Dockerfile target {target!r}"
        assert ":" not in image and "/" not in image, f"{workload}: the overlays set registry and tag, not the base"


def test_commands_point_at_real_code() -> None:
    for workload, container in containers():
        command = container.get("command", [])
        if not command:
            assert target_of_image(container["image"]) is None, f"{workload}: a Dalston image without a command"
        elif command[:2] == ["python", "-m"]:
            assert module_exists(command[2]) and packaged(command[2]), f"{workload}: {command[2]}"
        elif command[0] == "dalston":
            from typer.testing import CliRunner

            from dalston.cli import app

            result = CliRunner().invoke(app, [*command[1:], "--help"])
            assert result.exit_code == 0, f"{workload}: {command}: {result.output}"
        else:
            assert target_of_image(container["image"]) is None, f"{workload}: unexpected command {command}"


def test_http_probes_hit_endpoints_that_exist() -> None:
    routes = {
        "gateway": set(re.findall(r'@app\.get\("(/[a-z]+)"', (ROOT / "gateway" / "app.py").read_text())),
        "realtime_worker": set(re.findall(r'path == "(/[a-z]+)"', (ROOT / "realtime_worker" / "server.py").read_text())),
    }
    for workload, container in containers():
        ports = {p["name"] for p in container.get("ports", [])}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            http = container.get(kind, {}).get("httpGet")
            if not http or target_of_image(container["image"]) is None:
                continue
            assert http["port"] in ports, f"{workload}: {kind} on an unnamed port"
            assert http["path"] in routes[container["command"][2]], f"{workload}: {kind} {http['path']} is no route"
    gateway = next(c for w, c in containers() if w == "gateway")
    assert (gateway["readinessProbe"]["httpGet"]["path"], gateway["livenessProbe"]["httpGet"]["path"]) == ("/ready", "/health")


def test_stream_consumers_are_probed_on_their_own_consumer() -> None:
    for workload, container in containers():
        engine = engine_of(container)
        args = probe_args(container)
        if engine is not None:
            assert args == [keys.ENGINE_GROUP, engine], f"{workload}: probe {args}"
        elif container.get("command", [])[:3] == ["python", "-m", "orchestrator"]:
            assert args == [keys.ORCHESTRATOR_GROUP, "orchestrator"], f"{workload}: probe {args}"
        else:
            assert args is None, f"{workload} is no stream consumer"
        if args is not None:
            assert container["startupProbe"]["exec"]["command"] == container["livenessProbe"]["exec"]["command"]


# --- engines ----------------------------------------------------------------------------------

# Every job runs these (prepare → transcribe → merge): they never wait for a cold start, and a
# lag that reads NULL can never strand their queue at zero replicas (see engines-core.yaml).
ALWAYS_ON = {catalogue.DEFAULT_ENGINES[s] for s in (catalogue.Stage.PREPARE, catalogue.Stage.TRANSCRIBE, catalogue.Stage.MERGE)}


def engine_deployments() -> dict[str, tuple[str, Doc]]:
    found: dict[str, tuple[str, Doc]] = {}
    for name, deployment in by_name("Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            engine = engine_of(container)
            if engine is not None:
                assert engine not in found, f"{engine} runs in {found[engine][0]} and {name}"
                found[engine] = (name, container)
    return found


def test_every_engine_has_a_deployment_on_an_image_with_its_extra() -> None:
    found = engine_deployments()
    assert set(found) == set(catalogue.ENGINES), f"engines without a Deployment: {set(catalogue.ENGINES) - set(found)}"
    for engine, (name, container) in found.items():
        assert engine in catalogue.ENGINES, f"{name}: {engine} is not in the catalogue"
        target = target_of_image(container["image"])
        assert target is not None
        extra = catalogue.engine(engine).extra
        assert extra is None or extra in extras_of(target), f"{name}: {engine} needs {extra!r}; {target} has {extras_of(target)}"


def test_engines_with_weight_files_mount_them_where_the_config_says() -> None:
    data = config_data()
    for engine, (name, container) in engine_deployments().items():
        setting = catalogue.engine(engine).weights_setting
        if setting is None or setting == "llm_base_url":  # a server, not files
            continue
        assert any(m["mountPath"] == "/models" for m in container.get("volumeMounts", [])), f"{name} does not mount /models"
        assert data.get(f"DALSTON_{setting.upper()}", "").startswith("/models/"), f"{name}: DALSTON_{setting.upper()}"


def test_engines_scale_on_their_own_stream() -> None:
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs("ScaledObject")}
    for engine, (name, _) in engine_deployments().items():
        assert name in scaled, f"{name} has no ScaledObject"
        spec = scaled[name]["spec"]
        triggers = [t["metadata"] for t in spec["triggers"]]
        assert all(t["stream"] == keys.engine_stream(engine) for t in triggers), f"{name}: {triggers}"
        assert all(t["consumerGroup"] == keys.ENGINE_GROUP for t in triggers), f"{name}: {triggers}"
        # KEDA's mode follows the metadata: lagCount → XINFO GROUPS lag, else pending entries.
        lag = [t for t in triggers if "lagCount" in t]
        pending = [t for t in triggers if "lagCount" not in t]
        assert len(lag) == 1 and int(lag[0]["lagCount"]) > 0 and lag[0].get("activationLagCount") == "0", name
        assert len(pending) == 1 and pending[0].get("pendingEntriesCount") == "1", name
        assert "pendingEntriesCount" not in lag[0], f"{name}: KEDA ignores pendingEntriesCount beside lagCount"
        expected_min = 1 if engine in ALWAYS_ON else 0
        assert spec.get("minReplicaCount", 0) == expected_min, f"{name}: minReplicaCount {spec.get('minReplicaCount')}"


# --- realtime ---------------------------------------------------------------------------------


def test_realtime_workers_serve_models_their_image_can_load() -> None:
    settings = Settings(_env_file=None)
    workers = [(w, c) for w, c in containers() if c.get("command", [])[:3] == ["python", "-m", "realtime_worker"]]
    assert {w for w, _ in workers} == {"realtime-worker", "realtime-worker-parakeet"}
    for workload, container in workers:
        env = {e["name"]: e for e in container.get("env", [])}
        models = (
            json.loads(env["DALSTON_REALTIME_WORKER_MODELS"]["value"])
            if "DALSTON_REALTIME_WORKER_MODELS" in env
            else settings.realtime_worker_models
        )
        target = target_of_image(container["image"])
        assert target is not None
        for model in models:
            backend = catalogue.realtime_backend(model, settings)
            assert backend.extra is None or backend.extra in extras_of(target), f"{workload}: {model} needs {backend.extra}"
        # The gateway dials the URL the worker heartbeats: the pod's own address.
        command = container["command"]
        assert command[command.index("--url") + 1] == f"ws://$(POD_IP):{command[command.index('--port') + 1]}"
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


# --- metrics: what the rules, the dashboard and the realtime triggers query -------------------

# Gauges every replica sets for the whole fleet: each orchestrator for every stream
# (orchestrator/metrics.py refresh_streams), each session router for the whole realtime pool
# (session_router/metrics.py): summed across replicas they would count everything once per replica.
FLEET_GAUGES = {
    "dalston_stream_length",
    "dalston_stream_pending",
    "dalston_stream_lag",
    "dalston_stream_consumers",
    "dalston_dlq_size",
    "dalston_realtime_pool_workers",
    "dalston_realtime_pool_capacity",
    "dalston_realtime_pool_active_sessions",
    "dalston_realtime_pool_available_slots",
}
# Commands that serve /metrics on DALSTON_METRICS_PORT (shared/metrics_http.py) rather than on an HTTP port of their own.
METRICS_PORT_MODULES = {"engines.runner", "orchestrator", "session_router"}


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert rule, dashboard panel and prometheus trigger."""
    found = [
        (f"alerts.yaml:{rule['alert']}", rule["expr"])
        for group in yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    found += [(f"dashboard.json:{p['title']}", t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [
        (f"ScaledObject/{so['metadata']['name']}", t["metadata"]["query"])
        for so in docs("ScaledObject")
        for t in so["spec"]["triggers"]
        if t["type"] == "prometheus"
    ]
    return found


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(expr), lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None
    )
    return found


def matcher_hits(matcher: promql_parser.Matcher, candidates: list[str]) -> bool:
    if matcher.op == promql_parser.MatchOp.Equal:
        return matcher.value in candidates
    if matcher.op == promql_parser.MatchOp.Re:
        return any(re.fullmatch(matcher.value, c) for c in candidates)
    return True  # != and !~ exclude; nothing to find


@pytest.mark.parametrize(("where", "expr"), queries(), ids=[w for w, _ in queries()])
def test_queries_use_series_that_exist(where: str, expr: str) -> None:
    for selector in selectors(expr):
        name = selector.name or ""
        assert name in exported_series(), f"{where}: no service exports {name}"
        for matcher in selector.matchers.matchers:
            if matcher.name == "engine":
                assert matcher_hits(matcher, list(catalogue.ENGINES)), f"{where}: engine {matcher.value!r} is none of Dalston's"
            elif matcher.name == "app_kubernetes_io_component":
                assert where.endswith(f"/{matcher.value}"), f"{where} queries another workload's pods ({matcher.value})"


def fleet_gauges_outside_max(node: Any, under_max: bool = False) -> list[str]:
    """Fleet gauges read other than through `max` (or `min`) across replicas."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node.name] if node.name in FLEET_GAUGES and not under_max else []
    if isinstance(node, promql_parser.AggregateExpr):
        return fleet_gauges_outside_max(node.expr, str(node.op) in {"max", "min"})
    children = [getattr(node, a) for a in ("expr", "lhs", "rhs", "vector_selector") if getattr(node, a, None) is not None]
    children += list(getattr(node, "args", None) or [])
    return [name for child in children for name in fleet_gauges_outside_max(child, under_max)]


@pytest.mark.parametrize(("where", "expr"), queries(), ids=[w for w, _ in queries()])
def test_fleet_gauges_are_taken_once_not_per_replica(where: str, expr: str) -> None:
    assert fleet_gauges_outside_max(promql_parser.parse(expr)) == [], f"{where}: aggregate it with max across replicas"


def test_fleet_gauge_check_catches_a_sum() -> None:
    assert fleet_gauges_outside_max(promql_parser.parse("sum by (engine) (dalston_stream_lag) > 0")) == ["dalston_stream_lag"]
    assert fleet_gauges_outside_max(promql_parser.parse("dalston_dlq_size > 0")) == ["dalston_dlq_size"]
    assert fleet_gauges_outside_max(promql_parser.parse("sum(dalston_realtime_pool_capacity)")) == [
        "dalston_realtime_pool_capacity"
    ]
    assert fleet_gauges_outside_max(promql_parser.parse("deriv(dalston_stream_lag[15m]) > 0")) == ["dalston_stream_lag"]
    assert fleet_gauges_outside_max(promql_parser.parse("max by (engine) (deriv(dalston_stream_lag[15m]))")) == []


def serves_metrics_port(container: Doc) -> bool:
    command = container["command"]
    return command[:2] == ["python", "-m"] and command[2] in METRICS_PORT_MODULES


def test_processes_without_http_serve_metrics_on_a_named_port() -> None:
    configured = int(config_data().get("DALSTON_METRICS_PORT", "0"))
    served = [(w, c) for w, c in containers() if serves_metrics_port(c)]
    assert {w for w, _ in served} >= {"orchestrator", "session-router"} | {f"engine-{e}" for e in ("prepare", "merge")}
    for workload, container in served:
        overrides = {e["name"]: e.get("value") for e in container.get("env", [])}
        port = int(overrides.get("DALSTON_METRICS_PORT") or configured)
        assert port > 0, f"{workload}: DALSTON_METRICS_PORT is 0, so it serves no metrics"
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert ports.get("metrics") == port, f"{workload}: name its metrics port `metrics` ({port})"
    for workload, spec in pod_templates():
        if any(serves_metrics_port(c) for c in spec["containers"]):
            annotations = by_name("Deployment")[workload]["spec"]["template"]["metadata"].get("annotations", {})
            assert annotations.get("prometheus.io/port") == str(configured), workload


def test_podmonitor_scrapes_the_pods_that_serve_metrics() -> None:
    monitor = load_all(MONITORING / "podmonitor.yaml")[0]
    selected = [
        d
        for d in by_name("Deployment").values()
        if matches(monitor["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])
    ]
    annotated = [
        d for d in selected if d["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    ]
    assert {d["metadata"]["name"] for d in annotated} >= {
        "gateway",
        "realtime-worker",
        "realtime-worker-parakeet",
        "orchestrator",
        "session-router",
    } | {f"engine-{engine}" for engine in catalogue.ENGINES if f"engine-{engine}" in by_name("Deployment")}
    endpoint_ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    for deployment in annotated:
        ports = {
            p["name"]: p["containerPort"]
            for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        annotation = int(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
        assert annotation in ports.values() and endpoint_ports & set(ports), deployment["metadata"]["name"]
    # Prometheus turns the pod label into app_kubernetes_io_component, which the queries select on.
    assert COMPONENT_LABEL in monitor["spec"]["podTargetLabels"]


def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package has it); the rules were parsed above")
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        result = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


# --- overlays, rendered -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_to_valid_resources(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the base and components were checked file by file above")
    result = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    for doc in rendered:
        if STANDARD_API.match(doc["apiVersion"]):
            kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
        assert doc["metadata"].get("namespace") == "dalston" or doc["kind"] == "Namespace", doc["metadata"]["name"]
    gpu_images = 0
    for doc in rendered:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            target = target_of_image(image)
            if target is None:
                continue
            assert "/" in image and ":" in image, f"{overlay}: {image} has no registry or tag: add it to `images`"
            engine = engine_of(container)
            if engine is not None:
                extra = catalogue.engine(engine).extra
                assert extra is None or extra in extras_of(target), f"{overlay}: {engine} on {target}"
            if "nvidia.com/gpu" in container.get("resources", {}).get("limits", {}):
                gpu_images += 1
                assert engine is None or catalogue.engine(engine).gpu, f"{overlay}: {engine} gets a GPU it cannot use"
                if f"{target}-gpu" in targets():
                    pytest.fail(f"{overlay}: {doc['metadata']['name']} has a GPU but runs {target}, not {target}-gpu")
    assert (gpu_images > 0) == (overlay == "gpu")
