"""The engine built at install, loaded at once with an empty HOME; its first-use build (the fallback):
cached per install, never blocked by a dead build, never past its time limit."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lstmkit import _engine
from lstmkit._engine import build

from harness import ENGINES

needs_engine = pytest.mark.skipif("fast" not in ENGINES, reason="engine turned off by LSTMKIT_ENGINE=reference")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty engine cache of the test's own."""
    monkeypatch.setenv("LSTMKIT_ENGINE_DIR", str(tmp_path / "engine"))
    monkeypatch.delenv("LSTMKIT_ENGINE_BUILD_TIMEOUT", raising=False)
    return tmp_path / "engine"


def _hold_lock(build_dir):
    """A process that takes the build lock of ``build_dir`` as a build does, then sleeps."""
    script = textwrap.dedent(f"""
        import pathlib, sys, time
        from lstmkit._engine import build
        d = pathlib.Path({str(build_dir)!r}); d.mkdir(parents=True, exist_ok=True)
        with build._exclusive(d / "lstmkit.lock", time.monotonic() + 60, 60):
            (d / "lock").write_text("")     # PyTorch's lock, as a build in progress has it
            print("held", flush=True)
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture(scope="module")
def compiled():
    """The test session's own engine binary (built at install, or on first use), outside ``cache``."""
    if _engine.load() is None:
        pytest.skip(f"no compiled engine here: {_engine.load_error()}")
    return pathlib.Path(_engine.load().__file__)


def test_the_cache_is_keyed_by_source_flags_and_install(cache, tmp_path, monkeypatch):
    first = build.directory()
    assert first.parent == cache and first.name.startswith("lstmkit_engine_")
    other_install = tmp_path / "other" / "csrc"
    shutil.copytree(build.CSRC, other_install)
    monkeypatch.setattr(build, "CSRC", other_install)
    second = build.directory()
    assert second != first                                  # a second checkout builds beside, not over
    (other_install / "kernels.h").write_text((other_install / "kernels.h").read_text() + "\n// edited\n")
    assert build.directory() not in (first, second)         # an edited header is a new build
    monkeypatch.setattr(build, "CSRC", build.CSRC.__class__(_engine.__file__).with_name("csrc"))
    monkeypatch.setattr(build, "CFLAGS", [*build.CFLAGS, "-DNDEBUG"])
    assert build.directory() != first


@needs_engine
def test_a_lock_left_by_a_killed_build_does_not_block_the_next(compiled, cache, monkeypatch):
    target = build.directory()
    holder = _hold_lock(target)
    holder.send_signal(signal.SIGKILL)                      # killed mid-build: both lock files stay behind
    holder.wait()
    assert (target / "lock").exists() and (target / "lstmkit.lock").exists()

    def copy_instead_of_compiling(build_dir, lock_fd, deadline, limit, verbose):
        assert not (build_dir / "lock").exists()            # the dead build's PyTorch lock was removed
        shutil.copy(compiled, build_dir / f"{build.MODULE}.so")

    def import_the_copy(build_dir):      # a second copy of one extension cannot load in one process (pybind11)
        assert (build_dir / f"{build.MODULE}.so").read_bytes() == compiled.read_bytes()
        return _engine.load()

    monkeypatch.setattr(build, "_compile", copy_instead_of_compiling)
    monkeypatch.setattr(build, "_import", import_the_copy)
    monkeypatch.setenv("LSTMKIT_ENGINE_BUILD_TIMEOUT", "10")
    start = time.monotonic()
    module = build.find_or_build()
    assert time.monotonic() - start < 5 and hasattr(module, "empty_cache")
    assert (target / "complete").exists()


def test_waiting_on_a_live_build_ends_at_the_time_limit(cache, monkeypatch, capfd):
    holder = _hold_lock(build.directory())
    try:
        monkeypatch.setenv("LSTMKIT_ENGINE_BUILD_TIMEOUT", "1.5")
        start = time.monotonic()
        with pytest.raises(build.BuildError, match=rf"another process \(pid {holder.pid}\) has been building the "
                                                   r"engine .* longer than the time limit of 1.5 s"):
            build.find_or_build()
        assert time.monotonic() - start < 5
        assert f"waiting for pid {holder.pid} building the fast engine" in capfd.readouterr().err
    finally:
        holder.kill()
        holder.wait()


@needs_engine
def test_a_build_past_the_time_limit_is_killed_and_the_layers_fall_back(cache):
    script = textwrap.dedent("""
        import warnings, torch, lstmkit
        from lstmkit import cells
        torch.manual_seed(0)
        layer = lstmkit.Recurrent(cells.make("lstm", 2, 3))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y, _ = layer(torch.randn(2, 4, 2))
        print(layer.uses_engine(), tuple(y.shape), [str(w.message) for w in caught])
    """)
    env = {**os.environ, "LSTMKIT_ENGINE_DIR": str(cache), "LSTMKIT_ENGINE_BUILD_TIMEOUT": "3", "LSTMKIT_ENGINE": "jit"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 60
    assert "building the fast engine for this install" in done.stderr
    assert done.stdout.startswith("False (2, 4, 3)")
    assert "took longer than the time limit of 3 s" in done.stdout and "reference loops" in done.stdout
    time.sleep(0.5)
    survivors = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(cache) not in survivors                      # the compiler's whole process group is gone


def test_a_failed_build_warns_once_with_its_log(cache, monkeypatch):
    monkeypatch.setattr(_engine, "_state", {"tried": False, "ext": None, "error": None})
    monkeypatch.setenv("LSTMKIT_ENGINE", "jit")                # not the binary built at install
    monkeypatch.setenv("CXX", "/bin/false")                 # a compiler that fails everything
    with pytest.warns(RuntimeWarning, match=r"fast engine could not be built or loaded \(BuildError: .*build.log"):
        assert _engine.load() is None
    assert (build.directory() / "build.log").exists() and not (build.directory() / "complete").exists()


def test_a_bad_time_limit_is_named(cache, monkeypatch):
    for raw in ("soon", "0", "-5"):
        monkeypatch.setenv("LSTMKIT_ENGINE_BUILD_TIMEOUT", raw)
        with pytest.raises(build.BuildError, match=f"LSTMKIT_ENGINE_BUILD_TIMEOUT expected .*got '{raw}'"):
            build.find_or_build()


# ---------------------------------------------------------------------------------------------
# the engine built at install (setup.py)

@needs_engine
def test_an_install_runs_the_engine_at_once_with_an_empty_home(tmp_path):
    script = textwrap.dedent("""
        import time
        start = time.monotonic()
        import torch, lstmkit
        from lstmkit import _engine, cells
        layer = lstmkit.Recurrent(cells.make("lstm", 2, 3))
        y, _ = layer(torch.randn(2, 4, 2))
        print(_engine.load().__name__, layer.uses_engine(), round(time.monotonic() - start, 1))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("LSTMKIT_ENGINE_DIR", "XDG_CACHE_HOME", "LSTMKIT_ENGINE")}
    done = subprocess.run([sys.executable, "-c", script], env=env | {"HOME": str(tmp_path)}, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name, uses, seconds = done.stdout.split()
    assert (name, uses) == ("lstmkit._engine._C", "True"), "the engine was not built at install: " + done.stderr
    assert float(seconds) < 30 and "building" not in done.stderr and not list(tmp_path.iterdir())


def test_a_binary_built_from_other_sources_is_not_loaded(monkeypatch):
    if build.installed() is None:
        pytest.skip("no engine built at install here")
    assert build.installed().SOURCES == build.sources_hash()
    monkeypatch.setattr(build, "sources_hash", lambda: "0123456789abcdef")      # an edited source, another torch
    assert build.installed() is None
    # nor even imported: the first-use build's module registers the same types, once per process
    script = ("import sys; from lstmkit._engine import build; build.sources_hash = lambda: '0123456789abcdef'; "
              "assert build.installed() is None; print(f'{build.__package__}.{build.MODULE}' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_the_install_build_records_its_sources_and_takes_a_target(monkeypatch):
    monkeypatch.delenv("LSTMKIT_ENGINE_MARCH", raising=False)
    assert "-march=native" in build.install_flags() and f"-DLSTMKIT_SOURCES={build.sources_hash()}" in build.install_flags()
    monkeypatch.setenv("LSTMKIT_ENGINE_MARCH", "x86-64-v3")
    assert "-march=x86-64-v3" in build.install_flags()
    monkeypatch.setenv("LSTMKIT_ENGINE_MARCH", "native; rm -rf /")
    with pytest.raises(build.BuildError, match="LSTMKIT_ENGINE_MARCH expected .*got 'native; rm -rf /'"):
        build.install_flags()
