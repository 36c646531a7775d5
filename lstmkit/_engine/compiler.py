"""The child process that compiles the engine: ``python -m lstmkit._engine.compiler DIRECTORY NAME``.

Run by :func:`.build.find_or_build`, which holds the cache directory's lock, enforces the time
limit and loads the result; this process only runs PyTorch's extension build there.
"""

import sys

from torch.utils.cpp_extension import load

from .build import CFLAGS, INCLUDES, LDFLAGS, SOURCES

if __name__ == "__main__":
    build_directory, name = sys.argv[1], sys.argv[2]
    load(name=name, sources=SOURCES, extra_cflags=CFLAGS, extra_include_paths=INCLUDES, extra_ldflags=LDFLAGS,
         build_directory=build_directory, verbose=True)
