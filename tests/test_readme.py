"""The README's Python examples run, in order, in one namespace."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    for k, block in enumerate(blocks):
        exec(compile(block, f"README.md[python block {k}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "['cifg', 'elman'," in out
    assert "reset gate after the recurrent product" in out
    assert "Recurrent: argument 'x' expected 3 features" in out


def test_readme_lists_every_registered_cell():
    from lstmkit import cells
    text = README.read_text()
    for name in cells.names():
        assert f"`{name}`" in text, name


def test_readme_states_every_registered_tasks_file_formats():
    pytest.importorskip("lightning", reason="the training extras are not installed")
    from lstmkit.runs import registry
    text = README.read_text()
    for name in registry.names():
        assert f"| `{name}` | {registry.get(name).formats} |" in text, name
