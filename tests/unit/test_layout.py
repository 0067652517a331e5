"""The structure, checked from the code: each stage's deps cover what it imports, the bento packs what
the service imports and nothing else, sub-packages import one way only, and the code users run needs
no tool that only requirements-dev.txt installs."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT

# Which sub-packages each one may import at run time (serving imports no training code).
ALLOWED = {
    "core": {"core"},
    "task": {"core", "task"},
    "data": {"core", "task", "data"},
    "model": {"core", "task", "data", "model"},
    "tracking": {"core", "task", "data", "model", "tracking"},
    "serve": {
        "core",
        "task",
        "data",
        "model.runtime",
        "model.compiled",
        "model.features",
        "model.explanations",
        "serve",
    },
    "monitor": {"core", "task", "data", "model.runtime", "serve", "monitor"},
    # batch answers as the service does; its columnar path feeds the compiled graph as serve does
    "batch": {"core", "task", "data", "model.runtime", "model.compiled", "model.features", "serve", "batch"},
    "report": {"core", "report"},
    "notify": {"core", "notify"},
    "sandbox": {"sandbox"},
    "bench": {"core", "task", "data", "model", "serve", "sandbox", "deploy", "bench"},
    "deploy": {"core", "task", "data", "model", "serve", "tracking", "sandbox", "deploy"},
    "simulation": {"core", "task", "data", "serve", "sandbox", "simulation"},
    "cli": {
        "core",
        "task",
        "data",
        "tracking",
        "serve",
        "monitor",
        "batch",
        "notify",
        "report",
        "sandbox",
        "bench",
        "deploy",
        "simulation",
        "cli",
    },
}


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The project file a module name resolves to (None for third-party and standard modules)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def runtime_imports(path: Path) -> set[str]:
    """Every module this file imports when it runs, lazy (function-level) imports included;
    imports under `if TYPE_CHECKING:` are left out because they never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def closure(module: str, root: Path = ROOT) -> set[Path]:
    """The project files that importing `module` runs: its imports, theirs, and every parent package."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:depth]), root)
            if path is not None and path not in seen:
                seen.add(path)
                pending += runtime_imports(path)
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_stage_depends_on_every_file_it_imports(name: str) -> None:
    stage = stages()[name]
    assert stage["cmd"].startswith(f"python -m stages.{name} ")
    files = closure(f"stages.{name}")
    assert ROOT / "stages/__init__.py" in files and ROOT / f"stages/{name}.py" in files
    missing = sorted(str(f.relative_to(ROOT)) for f in files if not covered(f, stage["deps"]))
    assert not missing, f"dvc.yaml: stage {name} imports these files but does not depend on them: {missing}"


def test_the_closure_follows_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    (tmp_path / "pkg/a.py").write_text("def f():\n    from pkg import b\n")
    (tmp_path / "pkg/b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n")
    (tmp_path / "pkg/c.py").write_text("")
    names = {p.name for p in closure("pkg.a", tmp_path)}
    assert names == {"__init__.py", "a.py", "b.py"}


# What builds or trains a model and never runs in the service: the Bento must not ship it.
BUILD_TIME = {"skl2onnx", "onnxmltools", "onnx", "lightgbm", "mlflow", "evidently", "dvc"}
BUILD_TIME_MODULES = ("tabpipe.tracking", "tabpipe.model.conversion", "tabpipe.model.search", "tabpipe.model.training")


def packed_files() -> set[Path]:
    patterns = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    return {
        p
        for p in ROOT.rglob("*.py")
        if ".venv" not in p.parts and any(fnmatch.fnmatch(str(p.relative_to(ROOT)), pat) for pat in patterns)
    }


def build_time(name: str) -> bool:
    return name.split(".")[0] in BUILD_TIME or any(name == m or name.startswith(f"{m}.") for m in BUILD_TIME_MODULES)


def test_the_bento_packs_what_the_service_imports_and_no_build_time_code() -> None:
    packed = packed_files()
    needed = closure("service")
    assert {str(p.relative_to(ROOT)) for p in needed - packed} == set(), (
        "bentofile.yaml misses files the service imports"
    )
    reached = set().union(*(closure(".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in packed))
    unpacked = {str(p.relative_to(ROOT)) for p in reached - packed}
    assert unpacked == set(), "a packed file imports a file the Bento lacks"
    shipped = {(str(p.relative_to(ROOT)), name) for p in packed for name in runtime_imports(p) if build_time(name)}
    assert shipped == set(), "the Bento ships build-time code"


def test_the_build_time_check_sees_a_lazy_converter_import(tmp_path: Path) -> None:
    (tmp_path / "served.py").write_text("def load():\n    from skl2onnx import convert_sklearn\n")
    (tmp_path / "fine.py").write_text("import onnxruntime\nfrom tabpipe.model import compiled\n")
    assert sorted(n for n in runtime_imports(tmp_path / "served.py") if build_time(n)) == [
        "skl2onnx",
        "skl2onnx.convert_sklearn",
    ]
    assert [n for n in runtime_imports(tmp_path / "fine.py") if build_time(n)] == []


def test_training_runs_without_mlflow() -> None:
    """The model package trains, compiles and scores; tracking observes it and is never imported by it."""
    for path in sorted((ROOT / "tabpipe/model").glob("*.py")):
        tracked = {n for n in runtime_imports(path) if n.split(".")[0] == "mlflow" or n.startswith("tabpipe.tracking")}
        assert not tracked, f"{path.relative_to(ROOT)} imports {sorted(tracked)}"


def test_the_cli_imports_no_model_code() -> None:
    """The command parses options and reports; what trains, scores or gates a model runs in its own package."""
    for path in sorted((ROOT / "tabpipe/cli").glob("*.py")):
        model = {n for n in runtime_imports(path) if n == "tabpipe.model" or n.startswith("tabpipe.model.")}
        assert not model, f"{path.relative_to(ROOT)} imports {sorted(model)}"


def layer(path: Path) -> str | None:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[1] if parts[0] == "tabpipe" and len(parts) > 2 else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_sub_packages_import_one_way(package: str) -> None:
    for path in sorted((ROOT / "tabpipe" / package).glob("*.py")):
        for name in runtime_imports(path):
            target = module_file(name)
            if target is None or layer(target) is None:
                continue
            dotted = ".".join(target.relative_to(ROOT / "tabpipe").with_suffix("").parts)
            allowed = ALLOWED[package]
            assert dotted.split(".")[0] in allowed or dotted in allowed, f"{path.relative_to(ROOT)} imports {name}"


def test_every_sub_package_declares_what_it_may_import() -> None:
    found = {p.parent.name for p in (ROOT / "tabpipe").glob("*/__init__.py")}
    assert found == set(ALLOWED), "add the new sub-package to ALLOWED (and to the layouts in README.md, docs/)"


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = {
        path: {t for t in (module_file(n) for n in runtime_imports(path)) if t is not None and t != path}
        for path in (ROOT / "tabpipe").rglob("*.py")
    }
    state: dict[Path, str] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = "open"
        for target in graph.get(node, ()):
            if target.name == "__init__.py":
                continue
            assert state.get(target) != "open", f"import cycle: {[str(p.relative_to(ROOT)) for p in [*trail, target]]}"
            if target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def pins(path: Path) -> dict[str, str]:
    """A requirements file's own pins, by normalized name (extras dropped); its -r, -c and -e lines are not pins."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            found[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return found


def test_every_requirement_is_pinned_exactly_as_the_lock_pins_it() -> None:
    lock = pins(ROOT / "requirements.lock")
    for file in ("requirements.txt", "requirements-dev.txt"):
        differ = {name: version for name, version in pins(ROOT / file).items() if lock.get(name) != version}
        assert differ == {}, f"{file}: pins absent from requirements.lock or not exact"
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()


def test_the_code_users_run_imports_no_tool_only_developers_install() -> None:
    """requirements.txt is what running the pipeline, the command and the service installs."""
    from importlib.metadata import packages_distributions

    dev_only = set(pins(ROOT / "requirements-dev.txt")) - set(pins(ROOT / "requirements.txt"))
    providers = {
        module: {re.sub(r"[-_.]+", "-", d).lower() for d in names} for module, names in packages_distributions().items()
    }
    assert dev_only <= set().union(*providers.values()), "a developer tool is not installed here"
    code = [*(ROOT / "tabpipe").rglob("*.py"), *(ROOT / "stages").glob("*.py"), ROOT / "service.py"]
    needs = {
        (str(path.relative_to(ROOT)), name)
        for path in code
        for name in runtime_imports(path)
        if providers.get(name.split(".")[0], set()) & dev_only
    }
    assert needs == set(), "move these packages to requirements.txt"


def test_dvc_yaml_paths_and_their_errors(tmp_path: Path) -> None:
    from tabpipe.core.errors import PipelineError
    from tabpipe.core.layout import paths

    assert paths(ROOT)["models"]["model"] == ROOT / "models/model.joblib"
    with pytest.raises(PipelineError, match=r"dvc\.yaml: not found; run this from the project's root"):
        paths(tmp_path)
    (tmp_path / "dvc.yaml").write_text("vars: [1\n")
    with pytest.raises(PipelineError, match=r"dvc\.yaml: not valid YAML"):
        paths(tmp_path)


# A task's behaviour lives in its own module under tabpipe/task/ (docs/developing.md, "Add a task"):
# a line elsewhere that compares a task's name (or its estimator type) is a branch the task should hold.
TASK_BRANCH = re.compile(
    r"""(==|!=|\bin)\s*\(?["'](classification|regression|classifier|regressor)["']"""
    r"""|["'](classification|regression|classifier|regressor)["']\s*(==|!=)"""
    r"""|\.regression\b(?![.`'])|\bREGRESSION\b"""
)
TASK_BRANCH_BUDGET = 3  # the bound; docs/developing.md names the lines there are


def task_branches(paths: list[Path], root: Path = ROOT) -> list[str]:
    """Each line of `paths` (comments left out) that branches on a task's name, as file:line: code."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if TASK_BRANCH.search(line.split("#", 1)[0]):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_the_branch_search_sees_a_task_flag_and_skips_settings_sections(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        'if schema.regression:\n    pass\nx = 1 if task == "regression" else 2\n'
        "level = settings.regression.interval  # a settings section, not a branch\n"
        'kind = "numerical"\n'
    )
    found = [line.split(":", 1)[1] for line in task_branches([tmp_path / "a.py"], tmp_path)]
    assert found == ["1: if schema.regression:", '3: x = 1 if task == "regression" else 2']


def test_stages_never_branch_on_a_task_name() -> None:
    assert task_branches(sorted((ROOT / "stages").glob("*.py"))) == []


def test_outside_the_task_modules_few_lines_branch_on_a_task_name() -> None:
    outside = [
        path
        for path in [
            *sorted((ROOT / "tabpipe").rglob("*.py")),
            *sorted((ROOT / "stages").glob("*.py")),
            ROOT / "service.py",
        ]
        if path.relative_to(ROOT).parts[:2] != ("tabpipe", "task") and path != ROOT / "tabpipe/core/settings.py"
    ]
    found = task_branches(outside)
    assert len(found) <= TASK_BRANCH_BUDGET, "\n".join(found)
