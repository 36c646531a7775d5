"""Finding the compiled engine, or building it once, without ever hanging.

An install normally has it already: ``pip install`` (``setup.py``) compiles it ahead of time
as the module ``lstmkit._engine._C``, which carries a hash of the sources and the PyTorch version
it was built from (:func:`installed` loads it only while both still match: an edited source in
an editable install, or another PyTorch, falls back to the build below). Failing that, or with
``LSTMKIT_ENGINE=jit``, it is built on first use.

The first-use build is cached under a directory named by a fingerprint of everything that makes the
binary: the C++ sources and headers, the compiler flags, the PyTorch and Python versions, the
machine and the install's own path. Two installs on one machine, or an edited source, get
directories of their own rather than rebuilding over each other.

A build runs in a child process (``python -m lstmkit._engine.compiler``) under an exclusive
``flock`` on ``lstmkit.lock`` in that directory. The operating system releases such a lock when
its holder dies, so a build killed by Ctrl-C, SIGTERM or ``timeout`` leaves nothing that blocks
the next one (PyTorch's own ``lock`` file, which would, is removed by whoever holds ours: only a
dead build can have left it). The child inherits the lock, so a parent killed with SIGKILL leaves
its build to finish rather than to race a second one. Waiting for another process's build and the
build itself share one time limit, ``LSTMKIT_ENGINE_BUILD_TIMEOUT`` seconds (default 900): past
it the child's process group is killed and :class:`BuildError` says so, and the caller falls back
to the reference loops. A successful build writes ``complete``; only then is the module loaded.

``LSTMKIT_ENGINE_DIR`` moves the cache (default ``$XDG_CACHE_HOME/lstmkit/engine``, that is
``~/.cache/lstmkit/engine``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pathlib
import platform
import signal
import subprocess
import sys
import time

import torch

try:
    import fcntl
except ImportError:           # not a POSIX system: builds are not serialised between processes
    fcntl = None

__all__ = ["BuildError", "NAME", "MODULE", "SOURCES", "CFLAGS", "LDFLAGS", "INCLUDES", "cache_root", "directory",
           "time_limit", "find_or_build", "sources_hash", "installed", "install_flags"]

CSRC = pathlib.Path(__file__).with_name("csrc")
SOURCES = sorted(str(p) for p in CSRC.glob("*.cpp"))
INCLUDES = [str(CSRC)]
# at::parallel_for runs its blocks on torch's OpenMP threads only in code compiled with OpenMP;
# without it every block runs one after another on the calling thread
_OPENMP = ["-fopenmp"] if torch.backends.openmp.is_available() else []
_FAST_MATH = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
CFLAGS = [*_FAST_MATH[:1], "-march=native", *_FAST_MATH[1:], *_OPENMP]
LDFLAGS = list(_OPENMP)
NAME = "lstmkit_engine"
MODULE = "_C"                 # the extension's module name, in a build directory as in the package
DEFAULT_TIME_LIMIT = 900.0
_POLL = 0.2                   # seconds between tries of a lock another process holds


class BuildError(RuntimeError):
    """The engine could not be built within the limits (the message says why and where the log is)."""


def cache_root() -> pathlib.Path:
    """Where the engine's builds are cached (``LSTMKIT_ENGINE_DIR``, else ``~/.cache/lstmkit/engine``)."""
    if os.environ.get("LSTMKIT_ENGINE_DIR"):
        return pathlib.Path(os.environ["LSTMKIT_ENGINE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "lstmkit" / "engine"


def _sources_digest():
    digest = hashlib.sha256()
    for path in sorted(CSRC.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest


def fingerprint() -> str:
    """A short hash of the sources, flags, versions and install path that the binary depends on."""
    digest = _sources_digest()
    for part in (*CFLAGS, "|", *LDFLAGS, "|", torch.__version__, sys.version, platform.machine(),
                 str(CSRC.resolve())):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def sources_hash() -> str:
    """A hash of the C++ sources and headers and of the PyTorch version: what a binary built at
    install must have been built from to be loaded (the build records it as ``_C.SOURCES``)."""
    digest = _sources_digest()
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:16]


def install_flags() -> list[str]:
    """The compiler flags of the build at install: those of the first-use build, with the target
    CPU from ``LSTMKIT_ENGINE_MARCH`` (default ``native``: this machine; ``x86-64-v3`` for a wheel
    that runs on any AVX2 CPU) and the sources' hash recorded in the binary."""
    march = os.environ.get("LSTMKIT_ENGINE_MARCH", "native")
    if not march.replace("-", "").replace("_", "").isalnum():
        raise BuildError(f"LSTMKIT_ENGINE_MARCH expected a -march value such as native or x86-64-v3, got {march!r}")
    return [*_FAST_MATH[:1], f"-march={march}", *_FAST_MATH[1:], *_OPENMP, f"-DLSTMKIT_SOURCES={sources_hash()}"]


def installed():
    """The engine built at install (``lstmkit._engine._C``), or None when there is none, when it
    was built from other sources or for another PyTorch, or when it does not load here."""
    spec = importlib.util.find_spec(f"{__package__}.{MODULE}")
    if spec is None or spec.origin is None:
        return None
    # a binary of other sources is not even loaded: its types would then stand in the way of the
    # first-use build's module of the same name (pybind11 registers each type once per process)
    if sources_hash().encode() not in pathlib.Path(spec.origin).read_bytes():
        return None
    try:
        module = importlib.import_module(f"{__package__}.{MODULE}")
    except ImportError:             # built against another PyTorch's symbols
        return None
    return module if getattr(module, "SOURCES", None) == sources_hash() else None


def directory() -> pathlib.Path:
    """This install's build directory under :func:`cache_root`."""
    return cache_root() / f"{NAME}_{fingerprint()}"


def time_limit() -> float:
    """Seconds allowed for waiting on another build plus building (``LSTMKIT_ENGINE_BUILD_TIMEOUT``)."""
    raw = os.environ.get("LSTMKIT_ENGINE_BUILD_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIME_LIMIT
    try:
        limit = float(raw)
    except ValueError:
        raise BuildError(f"LSTMKIT_ENGINE_BUILD_TIMEOUT expected a number of seconds, got {raw!r}") from None
    if not limit > 0:
        raise BuildError(f"LSTMKIT_ENGINE_BUILD_TIMEOUT expected a positive number of seconds, got {raw!r}")
    return limit


def _import(build_dir: pathlib.Path):
    spec = importlib.util.spec_from_file_location(MODULE, build_dir / f"{MODULE}.so")
    if spec is None:
        raise BuildError(f"no loadable module {MODULE}.so in {build_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(message: str) -> None:
    print(f"lstmkit: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _exclusive(path: pathlib.Path, deadline: float, limit: float):
    """Hold an exclusive lock on ``path`` (its descriptor is yielded), waiting at most until ``deadline``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            waited = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        holder = path.read_text().strip() or "another process"
                        _say(f"waiting for {holder} building the fast engine in {path.parent}")
                        waited = True
                    if time.monotonic() >= deadline:
                        raise BuildError(f"another process ({path.read_text().strip() or 'unknown'}) has been "
                                         f"building the engine in {path.parent} for longer than the time limit "
                                         f"of {limit:g} s (LSTMKIT_ENGINE_BUILD_TIMEOUT)") from None
                    time.sleep(_POLL)
                except OSError:   # a file system without flock: build unserialised rather than not at all
                    break
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        yield fd
    finally:
        os.close(fd)


def _compile(build_dir: pathlib.Path, lock_fd: int, deadline: float, limit: float, verbose: bool) -> None:
    """Run the compiler process, killing its whole process group past ``deadline`` or on interruption."""
    log = build_dir / "build.log"
    command = [sys.executable, "-m", "lstmkit._engine.compiler", str(build_dir), MODULE]
    with open(log, "wb") as sink:
        output = None if verbose else sink
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT if output else None,
                                 start_new_session=True, pass_fds=(lock_fd,))
        try:
            code = child.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            _kill(child)
            raise BuildError(f"building the engine took longer than the time limit of {limit:g} s "
                             f"(LSTMKIT_ENGINE_BUILD_TIMEOUT); log in {log}") from None
        except BaseException:
            _kill(child)
            raise
    if code != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"the compiler process exited with status {code}"
        raise BuildError(f"{last} (log in {log})")


def _kill(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def find_or_build(*, verbose: bool = False):
    """The compiled extension module: loaded from this install's cache, or built there first.

    Raises :class:`BuildError` (or the error of a failed load) if it cannot be had within
    :func:`time_limit`.
    """
    build_dir = directory()
    complete = build_dir / "complete"
    if complete.exists():
        return _import(build_dir)
    limit = time_limit()
    deadline = time.monotonic() + limit
    build_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(build_dir / "lstmkit.lock", deadline, limit) as lock_fd:
        if not complete.exists():       # not built meanwhile by the process we waited for
            # PyTorch's own lock file: whoever holds ours is the only builder here, so one left
            # behind belongs to a build that was killed and would make the next wait forever
            (build_dir / "lock").unlink(missing_ok=True)
            _say(f"building the fast engine for this install (once; 1-3 minutes) in {build_dir}")
            _compile(build_dir, lock_fd, deadline, limit, verbose)
            complete.write_text(f"built {time.strftime('%Y-%m-%d %H:%M:%S')} with torch {torch.__version__}\n")
            _say("the fast engine is built")
    return _import(build_dir)
