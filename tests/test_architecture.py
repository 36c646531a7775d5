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


def _run_without(blocked: set[str], code: str, folder: Path) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter where importing any of ``blocked`` fails, as it does where
    they are not installed (a stub package of each name that raises ImportError comes first)."""
    for name in blocked:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", "import sys\n" + code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})


def test_serve_export_and_predict_work_without_lightning(tmp_path):
    run = ROOT / "tests" / "runs" / "data" / "forecast"                 # a trained run, committed
    record = (ROOT / "tests" / "runs" / "data" / "forecast_input.jsonl").read_text().strip()
    code = ("import json, importlib.util\n"
            "from fastapi.testclient import TestClient\n"
            "from lstmkit import cli\n"
            "from lstmkit.runs import load_run, registry\n"
            "from lstmkit.serve import create_app, load_models\n"
            f"run, record = {str(run)!r}, json.loads({record!r})\n"
            "names = registry.names()\n"
            "client = TestClient(create_app(load_models([run]), ['t' * 32]))\n"
            "answer = client.post('/v1/models/forecast/predict', json={'records': [record]},\n"
            "                     headers={'Authorization': 'Bearer ' + 't' * 32}).json()\n"
            "assert answer['predictions'] == load_run(run).predict([record]), answer\n"
            "if importlib.util.find_spec('onnx'):\n"
            f"    assert cli.main(['export', run, {str(tmp_path / 'run.onnx')!r}]) == 0\n"
            "assert not {'lightning', 'sklearn'} & set(sys.modules), sorted(sys.modules)\n"
            "print(len(names))")
    result = _run_without({"lightning", "lightning_fabric", "pytorch_lightning", "sklearn"}, code, tmp_path / "stubs")
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.splitlines()[-1]) >= 8


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
