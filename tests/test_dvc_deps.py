"""dvc.yaml's `deps:` are complete: every koemo module a stage script imports (transitively, lazy imports in function
bodies included) is covered by that stage's deps, no declared source dep is dead weight, and a folder dep holds
nothing else. An undeclared module would let `dvc status` call a stage up to date after its code changed: a stale
result with no warning; a folder holding code the stage never imports reruns it for nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The file of koemo module `name` (a package's __init__.py), or None when it is not one."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """koemo modules `path` imports anywhere (`from koemo.x import y` also tries `koemo.x.y` as a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "koemo"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "koemo" and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return found


def runs_code(path: Path) -> bool:
    """False for a file holding nothing but a docstring: it cannot change any output."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def closure(script: Path) -> set[Path]:
    """Every koemo source file that running `script` may execute: imports, transitively, and the parent packages'
    __init__ files that importing a submodule runs."""
    files, todo = set(), list(imported_modules(script))
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:k]))
            if path is not None and path not in files:
                files.add(path)
                todo.extend(imported_modules(path))
    return {f for f in files if runs_code(f)}


def stages() -> dict[str, dict]:
    """dvc.yaml's stages, a foreach stage once (its code deps do not depend on the item)."""
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_script(stage: dict) -> Path:
    body = stage.get("do", stage)
    match = re.match(r"python (stages/\S+\.py)", body["cmd"])
    assert match, f"cmd does not run a stage script: {body['cmd']}"
    return REPO / match.group(1)


def covered(dep: str, file: Path) -> bool:
    target = (REPO / dep).resolve()
    return file == target or target in file.parents


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_module_is_a_declared_dep_and_no_source_dep_is_dead(name):
    stage = stages()[name]
    body = stage.get("do", stage)
    deps = [d for d in body.get("deps", []) if "${" not in d]
    script = stage_script(stage)
    assert script.relative_to(REPO).as_posix() in deps, f"{name}: its script {script.relative_to(REPO)} is not a dep"
    needed = closure(script)
    missing = sorted(f.relative_to(REPO).as_posix() for f in needed if not any(covered(d, f) for d in deps))
    assert not missing, f"stage {name} imports {missing} but dvc.yaml does not list them (or a folder above) in its deps"
    source_deps = [d for d in deps if d.startswith("src/")]
    dead = [d for d in source_deps if not any(covered(d, f) for f in needed)]
    assert not dead, f"stage {name} declares {dead} but never imports anything there"
    assert "src/koemo" not in source_deps, f"{name}: a whole-package dep reruns the stage on every edit"


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_folder_dep_holds_only_code_the_stage_imports(name):
    """A folder dep reruns the stage when any file below it changes: every code file there must be in the stage's
    import closure (lazy imports included), or an edit the stage never runs (openSMILE code beside the mel features)
    reruns it. List the files instead, or move the stranger out of the folder."""
    stage = stages()[name]
    body = stage.get("do", stage)
    needed = closure(stage_script(stage))
    folders = [d for d in body.get("deps", []) if d.startswith("src/") and (REPO / d).is_dir()]
    strangers = sorted(f.relative_to(REPO).as_posix() for d in folders for f in (REPO / d).rglob("*.py")
                       if runs_code(f) and f not in needed)
    assert not strangers, f"stage {name}: folder deps {folders} hold {strangers}, which it never imports"


def test_the_closure_follows_lazy_and_transitive_imports():
    closure_of_stack = {f.relative_to(REPO).as_posix() for f in closure(REPO / "stages/stack.py")}
    # stages/stack.py → koemo.train.stack → koemo.core.metrics → koemo.core.io (the JSON writer every metrics file goes through)
    assert {"src/koemo/train/stack.py", "src/koemo/core/metrics.py", "src/koemo/core/io.py", "src/koemo/core/errors.py"} <= closure_of_stack
    engine = {"src/koemo/train/" + m for m in ("trainer.py", "cv.py", "runner.py", "distributed.py", "data.py")}
    assert not closure_of_stack & engine, "the stack stage imports the base-model training engine"


def test_runtime_is_no_stage_param():
    """`runtime` (threads, jobs, processes) says how a stage runs, not what it computes: a stage that declared it
    would go stale when a user moves the job to a machine with more GPUs."""
    declared = {name: [p for p in stage.get("do", stage).get("params", []) if str(p).split(".")[0] == "runtime"]
                for name, stage in stages().items()}
    assert not {n: p for n, p in declared.items() if p}, declared
