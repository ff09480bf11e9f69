"""dvc.yaml declares, for each stage, every project module the stage's script imports, so editing one re-runs it;
its plots show without a network."""

import ast
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

PACKAGES = ("emotion", "stages")
MODULES = {path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def project_imports(path: Path) -> set[Path]:
    """Project modules imported by the module at path (the package __init__ files aside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES]
        else:
            continue
        found |= {ROOT / f"{name.replace('.', '/')}.py" for name in names} & MODULES
    return found


def closure(script: Path) -> set[str]:
    seen, todo = set(), [script]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(project_imports(module))
    return {str(path.relative_to(ROOT)) for path in seen}


@pytest.mark.parametrize("stage", ["index", "train", "evaluate"])
def test_stage_deps_cover_every_module_it_runs(stage):
    declared = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"])
    missing = closure(ROOT / "stages" / f"{stage}.py") - declared
    assert not missing, f"dvc.yaml stage {stage} lacks deps: {sorted(missing)}"


def test_plots_are_images_that_show_without_a_network():
    """DVC's Vega plots load their scripts from a CDN and stay blank offline; images need nothing."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    plots = [next(iter(p)) if isinstance(p, dict) else p for stage in pipeline["stages"].values()
             for p in stage.get("plots", [])]
    assert plots and all(Path(p).suffix == ".png" for p in plots), plots
    assert "plots" not in pipeline  # top-level plots are Vega templates
    assert "/dvc_plots/" in (ROOT / ".gitignore").read_text().splitlines()
