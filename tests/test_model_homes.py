"""One home per model: every `stages/train_<m>.py` is `train_stage(koemo.models.<m>, ...)`, and every model of the
registry has its stage script, dvc.yaml stage, params.yaml section and `koemo predict` recipe; a model missing any
of them is named here rather than found when a run fails. No training stage imports the registry or predict/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from koemo.models.registry import MODELS
from test_dvc_deps import closure

REPO = Path(__file__).resolve().parents[1]
STAGE_SCRIPTS = sorted((REPO / "stages").glob("train_*.py"))


def train_stage_model(script: Path) -> str | None:
    """The `koemo.models` module a stage script hands to `train_stage` in its `run_stage(...)` call, or None."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "koemo.models"
                for a in n.names}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_stage" and len(node.args) >= 3
                and getattr(node.args[1], "id", None) == "train_stage" and getattr(node.args[2], "id", None) in imported):
            return node.args[2].id
    return None


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=lambda p: p.stem)
def test_every_training_stage_is_train_stage_of_its_model(script):
    name = train_stage_model(script)
    assert name is not None, f"{script.name}: call run_stage('{script.stem}', train_stage, <koemo.models module>, ...)"
    assert name in MODELS, f"{script.name}: koemo.models.{name} is not in koemo/models/registry.py MODELS"
    assert f"train_{MODELS[name].NAME}" == script.stem, f"{script.name} trains koemo.models.{name} (NAME {MODELS[name].NAME!r})"


def test_every_model_has_a_stage_script_a_dvc_stage_a_params_section_and_a_predict_recipe():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    predict_code = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "src/koemo/predict").rglob("*.py"))
    missing = []
    for name, module in MODELS.items():
        stage = f"train_{name}"
        if not (REPO / "stages" / f"{stage}.py").is_file():
            missing.append(f"{name}: stages/{stage}.py")
        if stage not in dvc:
            missing.append(f"{name}: dvc.yaml stage {stage}")
        if stage not in params:
            missing.append(f"{name}: params.yaml section {stage}")
        if f"def _predict_{name}(" not in predict_code and f"def predict_{name}(" not in predict_code:
            missing.append(f"{name}: its inference recipe in src/koemo/predict/ (def predict_{name})")
        if not (set(module.NEEDS) <= {"text", "wav"} and isinstance(module.DISTRIBUTED, bool)):
            missing.append(f"{name}: NEEDS ⊆ (text, wav) and DISTRIBUTED a bool")
        if module.used_keys(params)[:3] != ["labels.classes", "train", stage]:
            missing.append(f"{name}: used_keys starts with labels.classes, train, {stage}")
    assert not missing, "models of koemo/models/registry.py lack: " + "; ".join(missing)
    assert len(STAGE_SCRIPTS) == len(MODELS)


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=lambda p: p.stem)
def test_no_training_stage_imports_the_registry_or_predict(script):
    files = {f.relative_to(REPO).as_posix() for f in closure(script)}
    strangers = sorted(f for f in files if f == "src/koemo/models/registry.py" or f.startswith("src/koemo/predict/"))
    assert not strangers, f"{script.name} imports {strangers}: every model or an inference edit would rerun it"
