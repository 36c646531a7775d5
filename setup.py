"""Compiles the engine (``lstmkit/_engine/csrc``) into ``lstmkit._engine._C`` when lstmkit is
installed, so that nothing is compiled at import, at first use or inside a server's request.

PyTorch must be importable while building: install it first and build without isolation
(``pip install --no-build-isolation .``, as for other PyTorch extensions); an isolated build
would fetch a PyTorch of its own. Without PyTorch or a compiler, lstmkit installs without the
binary and builds the engine on first use instead. ``LSTMKIT_ENGINE_MARCH`` picks the target CPU
(default ``native``; ``x86-64-v3`` for a wheel for any AVX2 machine); ``LSTMKIT_BUILD_ENGINE=0``
skips the build.
"""

import importlib.util
import os
import pathlib
import sys

from setuptools import setup

ROOT = pathlib.Path(__file__).resolve().parent


def _build_module():
    """``lstmkit/_engine/build.py`` on its own (importing lstmkit itself needs its dependencies)."""
    spec = importlib.util.spec_from_file_location("_lstmkit_engine_build", ROOT / "lstmkit" / "_engine" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def engine() -> dict:
    if os.environ.get("LSTMKIT_BUILD_ENGINE", "1") == "0":
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print("lstmkit: PyTorch is not importable while building, so the engine is not compiled now: it builds on "
              "first use (install torch first and use pip install --no-build-isolation to compile it here)",
              file=sys.stderr)
        return {}
    build = _build_module()

    class OptionalBuild(BuildExtension):
        """A compiler failure leaves lstmkit installed, with the engine built on first use."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as error:  # noqa: BLE001 - any failure: install without the binary
                print(f"lstmkit: the engine did not compile at install ({error}); it builds on first use instead",
                      file=sys.stderr)

    sources = [str(pathlib.Path(p).relative_to(ROOT.resolve())) for p in build.SOURCES]
    extension = CppExtension(f"lstmkit._engine.{build.MODULE}", sources, include_dirs=build.INCLUDES,
                             extra_compile_args=build.install_flags(), extra_link_args=build.LDFLAGS)
    return {"ext_modules": [extension], "cmdclass": {"build_ext": OptionalBuild}}


setup(**engine())
