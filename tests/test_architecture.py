"""The architecture, as tests: imports go down only (import-linter's contracts in pyproject.toml,
function-level imports included), no module imports itself back through others, the server and
the exporter run without the trainer, and each built-in task is one folder that nothing outside
it names."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="import-linter (the test extra) is not installed")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lstmkit"
DEPRECATED = {"lstmkit.train.config", "lstmkit.train.checkpoint", "lstmkit.train.registry", "lstmkit.train.json_output",
              "lstmkit.train.plots", "lstmkit.train.generate", "lstmkit.train.estimators", "lstmkit.train.tasks"}


def test_the_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_back():
    graph = grimp.build_graph("lstmkit", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        if module in DEPRECATED:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in DEPRECATED:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None and not DEPRECATED & set(back):
                cycles.append((module, *back))
    assert not cycles, f"import cycles (function-level imports count): {cycles[:5]}"


_BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError(f'{{name}} is blocked in this test')
sys.meta_path.insert(0, Block())
"""


def _run_without(blocked: set[str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK.format(blocked=blocked) + code], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning"})


def test_serve_and_export_and_a_run_need_no_lightning():
    code = ("import lstmkit.serve, lstmkit.export, lstmkit.runs\n"
            "from lstmkit.runs import registry\n"
            "names = registry.names()\n"
            "import lstmkit.cli.serve, lstmkit.cli.export, lstmkit.cli.predict\n"
            "assert 'lightning' not in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)\n"
            "print(len(names))")
    result = _run_without({"lightning", "lightning_fabric", "pytorch_lightning"}, code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) >= 8


def _task_names() -> set[str]:
    from lstmkit.runs import registry
    return {name for name in registry.names() if registry.get(name).__module__.startswith("lstmkit.tasks.")}


def _named(path: Path, names: set[str]) -> list[str]:
    """Identifiers and string constants of ``path`` equal to a task name, but the names of
    graph inputs and outputs (``g.input("forecast", ...)``), which are a model's, not a task's."""
    tree = ast.parse(path.read_text())
    io = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr in ("input", "output") for arg in node.args}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in io:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in names:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.id}")
    return found


def test_no_built_in_task_is_named_in_the_server_the_exporter_or_a_run():
    names = _task_names()
    found = [hit for package in ("serve", "export", "runs") for path in (PACKAGE / package).rglob("*.py")
             for hit in _named(path, names)]
    assert not found, found


def test_each_built_in_task_is_one_folder_with_its_parts():
    from lstmkit.runs import registry
    for name in _task_names():
        task = registry.get(name)
        folder = PACKAGE / "tasks" / name
        assert task.__module__ == f"lstmkit.tasks.{name}.task" and (folder / "__init__.py").is_file()
        if task.stream is not None:
            assert task.stream.__module__.startswith(f"lstmkit.tasks.{name}."), task.stream
        for reference in task.estimators:
            assert reference.startswith(f"lstmkit.tasks.{name}.estimator:"), reference
        if task.exports():
            assert task.export_graph.__module__ == task.__module__ and (folder / "export.py").is_file()
