"""The data of a run as batches: datasets of sequences, padding, length-bucketed batches shared
among the processes of a distributed run, and stratified splits."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

__all__ = ["ListDataset", "pad_sequences", "BucketBatchSampler", "world", "stratified_split"]


class ListDataset(Dataset):
    """A list of items: (sequence tensor, target)."""

    def __init__(self, items: list):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]

    def lengths(self) -> list[int]:
        return [len(x) for x, _ in self.items]


def pad_sequences(sequences: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Pad (T_b, ...) tensors with zeros to (B, T_max, ...); returns ``(padded, lengths)``."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    return nn.utils.rnn.pad_sequence(sequences, batch_first=True), lengths


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: ``fraction`` of each class held out, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.extend(rng.permutation(members)[:max(1, round(fraction * len(members)))])
    held = np.sort(np.asarray(held, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), held), held


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process in a distributed run; ``(0, 1)`` alone."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BucketBatchSampler:
    """Batches of indices; shuffled per epoch from ``seed`` and the epoch alone, so a resumed run
    draws the same batches as an uninterrupted one.

    ``lengths`` given: each pool of 50 batches is sorted by length before it is cut into batches
    (less padding, same randomness of batch order).

    Under ``torch.distributed`` with P processes, ``batch_size`` is each process's: the sampler
    draws the batches of P·batch_size that one process would (the same global batches) and gives
    each process its contiguous part of every one, so P processes train on exactly the batches of
    one process with P times the batch size, each example once. Training (``shuffle``): every
    process gets the same number of batches (the all-reduce of each step waits for all), so a last
    global batch of fewer than P examples is left out of that epoch. Evaluation: every example
    once, no padding; a split of fewer examples than processes is read whole by each.
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int = 0,
                 lengths: list[int] | None = None):
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.lengths = np.asarray(lengths) if lengths is not None else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self, batch_size: int) -> list[np.ndarray]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        if self.lengths is not None:
            pool = 50 * batch_size
            order = np.concatenate([chunk[np.argsort(self.lengths[chunk], kind="stable")]
                                    for chunk in np.array_split(order, max(1, math.ceil(self.size / pool)))])
        batches = [order[i:i + batch_size] for i in range(0, self.size, batch_size)]
        if self.shuffle and self.lengths is not None:
            batches = [batches[i] for i in np.random.default_rng([self.seed, self.epoch, 1]).permutation(len(batches))]
        return batches

    def batches(self, rank: int = 0, processes: int = 1) -> list[list[int]]:
        """The batches of process ``rank`` out of ``processes``, in order."""
        batches = self._batches(self.batch_size * processes)
        if processes == 1 or (not self.shuffle and self.size < processes):
            return [b.tolist() for b in batches]
        if self.shuffle:
            batches = [b for b in batches if len(b) >= processes]
        parts = (np.array_split(b, processes)[rank] for b in batches)
        return [part.tolist() for part in parts if len(part)]

    def __iter__(self):
        return iter(self.batches(*world()))

    def __len__(self) -> int:
        return len(self.batches(*world()))
