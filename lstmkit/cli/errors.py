"""What every subcommand does with an error the user can fix: one line on stderr, exit status 2.

Bad configs, checkpoints, files, values and missing extras are the user's to fix and get a
message without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["USER_ERRORS", "fail", "guarded"]

# ConfigError, CheckpointError and json.JSONDecodeError are ValueErrors; FileNotFoundError and
# FileExistsError are OSErrors; a missing extra or data package is an ImportError
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


def fail(prog: str, error: Exception | str) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def guarded(prog: str, command: Callable[[], int | None]) -> int:
    """Run ``command``; a user error becomes ``prog: error: ...`` and exit status 2. A reader that
    stops reading (``lstmkit generate ... | head``) ends the command quietly, as it ends ``yes``."""
    try:
        result = command()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except USER_ERRORS as error:
        return fail(prog, error)
    return 0 if result is None else result


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):              # no file descriptor behind stdout (a test's capture)
        pass
