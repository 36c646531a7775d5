"""Configs by task name: a dict or a YAML file validated into the config class of its task."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ..data.readers import decode_utf8
from . import registry
from .config import ConfigError, RunConfig, apply_overrides

__all__ = ["parse_config", "load_config", "default_config"]


def _describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got = "" if e["type"] == "missing" or isinstance(got, dict) else f", got {got!r}"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {where}: {message}{got}")
    return "invalid config:\n" + "\n".join(lines)


def parse_config(data: dict) -> RunConfig:
    """Validate a dict (e.g. from YAML) into the run config of its ``task`` (default: the first
    registered, ``classify``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config: expected a mapping of keys to values, got {type(data).__name__}")
    data = {"task": registry.default(), **data}
    if data["task"] not in registry.names():
        raise ConfigError(f"invalid config:\n  task: expected one of {registry.names()}, got {data['task']!r}")
    try:
        return registry.get(data["task"]).config_class.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def load_config(path: str | Path | None = None, overrides: list[str] = ()):
    """Read a YAML config (None: the default task's default config), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config file {str(path)!r} is a directory, expected a YAML file")
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(decode_utf8(path.read_bytes(), f"config file {str(path)!r}")) or {}
        except ValueError as error:
            raise ConfigError(str(error)) from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(path)!r}: expected a mapping of keys to values, "
                              f"got {type(data).__name__}")
    return parse_config(apply_overrides(data, list(overrides)))


def default_config(task: str | None = None) -> RunConfig:
    """The default config of ``task`` (None: of the default task)."""
    task = registry.default() if task is None else task
    if task not in registry.names():
        raise ConfigError(f"unknown task {task!r}: expected one of {registry.names()}")
    return registry.get(task).config_class()
