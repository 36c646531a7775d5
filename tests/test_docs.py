"""The documentation site: it builds with ``mkdocs build --strict`` (a broken link, a page
missing from the navigation or an API object that does not resolve fails), every Python block
of the README and of the guide runs, and the built site renders in headless Chromium."""

import functools
import http.server
import pathlib
import re
import subprocess
import sys
import threading

import pytest

from browser import chromium_page

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _guide_pages() -> list[pathlib.Path]:
    """The guide's pages in the order of the site's navigation."""
    yaml = pytest.importorskip("yaml")
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def walk(entries):
        for entry in entries:
            for value in entry.values():
                yield from walk(value) if isinstance(value, list) else [value]
    return [ROOT / "docs" / page for page in walk(nav) if not page.startswith("api/")]


def _python_blocks(path: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    pytest.importorskip("mkdocs", reason="the docs are built with the test extra's mkdocs-material")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", **__import__("os").environ})
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_the_site_builds_strictly_with_every_page_and_api_module(site):
    assert (site / "index.html").is_file() and (site / "serving" / "index.html").is_file()
    api = (site / "api" / "cells" / "index.html").read_text()
    assert "lstmkit.cells.PeepholeLSTM" in api and "init_state" in api     # from the docstrings
    assert not [p for p in site.rglob("*.html") if "fonts.googleapis" in p.read_text()]   # works offline


def test_the_readme_python_blocks_run(capsys):
    namespace: dict = {}
    for k, block in enumerate(_python_blocks(README)):
        exec(compile(block, f"README.md[python block {k}]", "exec"), namespace)
    assert "(4, 10, 16)" in capsys.readouterr().out


def test_the_guides_python_blocks_run_in_order(capsys):
    namespace: dict = {}
    blocks = 0
    for page in _guide_pages():
        for k, block in enumerate(_python_blocks(page)):
            exec(compile(block, f"{page.name}[python block {k}]", "exec"), namespace)
            blocks += 1
    assert blocks >= 6
    out = capsys.readouterr().out
    assert "'cifg', 'cornn', 'elman'," in out
    assert "reset gate after the recurrent product" in out
    assert "Recurrent: argument 'x' expected 3 features" in out


def test_the_guide_lists_every_registered_cell():
    from lstmkit import cells
    text = (ROOT / "docs" / "cells-and-layers.md").read_text()
    for name in cells.names():
        assert f"`{name}`" in text, name


def test_the_guide_states_every_registered_tasks_file_formats():
    pytest.importorskip("lightning", reason="the training extras are not installed")
    from lstmkit.runs import registry
    text = (ROOT / "docs" / "training.md").read_text()
    for name in registry.names():
        assert f"| `{name}` | {registry.get(name).formats} |" in text, name


def test_the_readme_stays_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)", README.read_text()):
        assert (ROOT / link).is_file(), link


def test_the_site_renders_in_chromium(site, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with chromium_page() as (page, errors):
            page.goto(f"{url}/")
            assert "lstmkit" in page.title() and page.locator("nav").count() > 0
            page.screenshot(path=tmp_path / "home.png", full_page=False)
            page.goto(f"{url}/api/layers/")
            page.wait_for_load_state("networkidle")
            assert page.locator("h2, h3, h4").filter(has_text="Recurrent").count() > 0
            page.screenshot(path=tmp_path / "api-layers.png", full_page=False)
            assert errors == []
    finally:
        server.shutdown()
    assert (tmp_path / "home.png").stat().st_size > 10_000
