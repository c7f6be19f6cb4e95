"""The structure the code promises: services meet only in shared/, and the stage catalogue
matches the engine packages it names. Read as source, so nothing heavy gets imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared import catalogue

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "orchestrator", "session_router", "engines", "realtime_worker")


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports (absolute imports; relative ones stay inside)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_services_meet_only_in_shared(service: str) -> None:
    crossings = [
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sorted((ROOT / service).rglob("*.py"))
        for other in sorted(imported_packages(path) & set(SERVICES) - {service})
    ]
    assert not crossings, "services may share code only through shared/:\n" + "\n".join(crossings)


def test_shared_imports_no_service() -> None:
    crossings = [
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sorted((ROOT / "shared").rglob("*.py"))
        for other in sorted(imported_packages(path) & {*SERVICES, "dalston"})
    ]
    assert not crossings, "\n".join(crossings)


def test_import_checker_sees_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import json\nfrom realtime_worker.protocol import X\nfrom . import sibling\n")
    assert imported_packages(module) == {"json", "realtime_worker"}


def engine_ids_declared(module: str) -> dict[str, str]:
    """class name -> its `engine_id = "..."` in the module's source."""
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    declared = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and [getattr(t, "id", None) for t in statement.targets] == ["engine_id"]
                    and isinstance(statement.value, ast.Constant)
                ):
                    declared[node.name] = statement.value.value
    return declared


@pytest.mark.parametrize("engine_id", sorted(catalogue.ENGINES))
def test_catalogue_entry_points_at_its_engine(engine_id: str) -> None:
    info = catalogue.engine(engine_id)
    module, _, attr = info.entry.partition(":")
    assert engine_ids_declared(module).get(attr) == engine_id, f"{info.entry} does not declare engine_id = {engine_id!r}"
    if info.extra is not None:
        assert info.extra in (ROOT / "pyproject.toml").read_text(), f"{engine_id}: extra {info.extra!r} is not in pyproject.toml"
    if info.integrated:
        assert info.integrated_task and info.stage in info.runs_stages


def test_every_stage_has_a_default_engine_of_that_stage() -> None:
    assert set(catalogue.DEFAULT_ENGINES) == set(catalogue.Stage)
    for stage, engine_id in catalogue.DEFAULT_ENGINES.items():
        assert catalogue.engine(engine_id).stage == stage


def test_stage_engine_choices_are_checked() -> None:
    assert catalogue.check_stage_engines({"diarize": "pyannote-4.0"}) == {catalogue.Stage.DIARIZE: "pyannote-4.0"}
    with pytest.raises(ValueError, match="runs stage transcribe, not diarize"):
        catalogue.check_stage_engines({"diarize": "faster-whisper"})
    with pytest.raises(ValueError, match="unknown engine 'nemo'"):
        catalogue.check_stage_engines({"transcribe": "nemo"})
    with pytest.raises(ValueError, match="unknown stage 'polish'"):
        catalogue.check_stage_engines({"polish": "merge"})


def test_test_modules_have_unique_names() -> None:
    """pytest imports test modules by basename (the test folders are not packages): two files
    of one name in different folders stop the whole run at collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py") if "node_modules" not in p.parts]
    assert sorted({n for n in names if names.count(n) > 1}) == []
