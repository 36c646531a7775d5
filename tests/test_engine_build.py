"""The engine's first-use build: cached per install, never blocked by a dead build, never past its time limit."""

import os
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
    """Where the test session's own engine was built (building it if need be), outside ``cache``."""
    if _engine.load() is None:
        pytest.skip(f"no compiled engine here: {_engine.load_error()}")
    return build.directory()


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

    def copy_instead_of_compiling(build_dir, name, lock_fd, deadline, limit, verbose):
        assert not (build_dir / "lock").exists()            # the dead build's PyTorch lock was removed
        shutil.copy(compiled / f"{compiled.name}.so", build_dir / f"{name}.so")

    monkeypatch.setattr(build, "_compile", copy_instead_of_compiling)
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
    env = {**os.environ, "LSTMKIT_ENGINE_DIR": str(cache), "LSTMKIT_ENGINE_BUILD_TIMEOUT": "3"}
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
    monkeypatch.delenv("LSTMKIT_ENGINE", raising=False)
    monkeypatch.setenv("CXX", "/bin/false")                 # a compiler that fails everything
    with pytest.warns(RuntimeWarning, match=r"fast engine could not be built or loaded \(BuildError: .*build.log"):
        assert _engine.load() is None
    assert (build.directory() / "build.log").exists() and not (build.directory() / "complete").exists()


def test_a_bad_time_limit_is_named(cache, monkeypatch):
    for raw in ("soon", "0", "-5"):
        monkeypatch.setenv("LSTMKIT_ENGINE_BUILD_TIMEOUT", raw)
        with pytest.raises(build.BuildError, match=f"LSTMKIT_ENGINE_BUILD_TIMEOUT expected .*got '{raw}'"):
            build.find_or_build()
