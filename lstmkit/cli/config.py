"""``lstmkit config``: a registered task's complete default config, every key commented."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .errors import guarded

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    from ..runs import registry
    from ..runs.config import config_yaml
    from ..runs.parsing import default_config
    tasks = registry.names()
    parser = argparse.ArgumentParser(
        prog="lstmkit config", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print a task's complete default config, every key commented.",
        epilog="tasks:\n" + "\n".join(f"  {name:10s} {registry.get(name).config_class.model_fields['task'].description}"
                                      for name in tasks) +
               "\nexamples:\n  lstmkit config forecast > my_forecast.yaml\n  lstmkit train my_forecast.yaml")
    parser.add_argument("task", nargs="?", default=registry.default(), choices=tasks,
                        help=f"task (default {registry.default()})")
    args = parser.parse_args(argv)
    return guarded("lstmkit config", lambda: print(config_yaml(default_config(args.task))))
