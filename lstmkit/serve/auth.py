"""Bearer tokens of ``lstmkit serve``: read from a file (one token per line), or created on first
start, readable by its owner only (mode 0600)."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

__all__ = ["default_token_file", "load_tokens", "token_matches"]


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/lstmkit/serve-token`` (``~/.config/lstmkit/serve-token``)."""
    root = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return root / "lstmkit" / "serve-token"


def load_tokens(path: str | Path | None) -> tuple[list[str], Path, bool]:
    """``(tokens, path, created)``: the tokens of ``path`` (blank lines and ``#`` comments skipped);
    with ``path`` None, those of :func:`default_token_file`, which is created with one new token
    (mode 0600) when it does not exist."""
    created = False
    if path is None:
        path = default_token_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            created = True
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {str(path)!r} does not exist")
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise PermissionError(f"token file {str(path)!r} is readable by others (mode {path.stat().st_mode & 0o777:o}); "
                              f"expected mode 600: chmod 600 {path}")
    tokens = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ValueError(f"token file {str(path)!r} holds no token (one per line)")
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise ValueError(f"token file {str(path)!r}: expected tokens of at least 16 characters, got one of {len(short[0])}")
    return tokens, path, created


def token_matches(given: str, tokens: list[str]) -> str | None:
    """The configured token equal to ``given`` (compared in constant time), else None."""
    found = None
    for token in tokens:
        if hmac.compare_digest(given.encode(), token.encode()):
            found = token
    return found
