"""Checkpoints as one safetensors file: no pickle, so loading one never executes code.

A training checkpoint is a nested dict (weights, optimiser and scheduler states, loop progress,
callback states, RNG states, the config and what the data set-up fitted). Its tensors go into
the safetensors body under their path in the tree; the rest of the tree is JSON in the header's
metadata, with tensors replaced by references and the few non-JSON types (tuples, non-string
keys) tagged. A SHA-256 of every tensor's bytes and of that header tree (the config, scalers,
class names, vocabulary and threshold shape predictions as much as the weights do), kept in the
metadata, turns a corrupted file into a clear error instead of a silently wrong model. Files are
written to a temporary name and renamed, so a crash or a full disk mid-write leaves the previous
checkpoint whole; a temporary file that a killed process left behind is removed by the next save
into the same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

__all__ = ["FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint"]

FORMAT = "lstmkit-checkpoint/2"
# version 1 checksummed the tensors only; its files still load (their header is not verified)
_TENSORS_ONLY = "lstmkit-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, corrupted or not an lstmkit checkpoint."""


def _encode(node: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, torch.Tensor):
        key = path or "root"
        tensors[key] = node.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(node, dict):
        if all(isinstance(k, str) for k in node) and "__tensor__" not in node:
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in node.items()}
        return {"__items__": [[_encode(k, f"{path}/#k{i}", tensors), _encode(v, f"{path}/#{i}", tensors)]
                              for i, (k, v) in enumerate(node.items())]}
    if isinstance(node, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(node)]}
    if isinstance(node, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(node)]
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, Path):
        return str(node)
    raise TypeError(f"save_checkpoint: cannot store a {type(node).__name__} at {path or '/'} "
                    "(only tensors, dicts, lists, tuples, str, int, float, bool and None)")


def _decode(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, tensors) for v in node["__tuple__"])
        if "__items__" in node:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in node["__items__"]}
        return {k: _decode(v, tensors) for k, v in node.items()}
    return node


def _digest(tensors: dict[str, torch.Tensor], tree: str | None) -> str:
    h = hashlib.sha256()
    if tree is not None:
        h.update(f"tree|{len(tree)}|".encode())
        h.update(tree.encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(checkpoint: dict, path: str | Path) -> None:
    """Write ``checkpoint`` (a nested dict with tensors) to ``path`` atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = json.dumps(_encode(checkpoint, "", tensors))
    metadata = {"format": FORMAT, "tree": tree, "sha256": _digest(tensors, tree)}
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):     # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())                  # mkstemp makes 0600; the run's other files follow the umask
        os.replace(tmp, path)
    except (SafetensorError, OSError) as error:
        Path(tmp).unlink(missing_ok=True)
        kept = " (the previous checkpoint there is intact)" if path.is_file() else ""
        raise CheckpointError(f"could not write checkpoint {str(path)!r}{kept}: {error}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; ``CheckpointError`` if it is not whole."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or not a safetensors file ({error})") from None
    version = metadata.get("format")
    if version not in (FORMAT, _TENSORS_ONLY):
        raise CheckpointError(f"checkpoint {str(path)!r} is not an lstmkit checkpoint "
                              f"(format {version!r}, expected {FORMAT!r})")
    if _digest(tensors, None if version == _TENSORS_ONLY else metadata.get("tree", "")) != metadata.get("sha256"):
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: its tensors or its header (config, fitted "
                              "set-up) do not match their SHA-256")
    try:
        return _decode(json.loads(metadata["tree"]), tensors)
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has a damaged header ({error})") from None
