"""Build the fast engine now and show the build log: ``python -m lstmkit._engine``."""

import sys

from . import load

if __name__ == "__main__":
    try:
        load(verbose=True, strict=True)
    except Exception as err:  # noqa: BLE001
        print(f"lstmkit engine: build failed: {err}", file=sys.stderr)
        sys.exit(1)
    print("lstmkit engine: built and loaded")
