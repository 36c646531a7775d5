"""Connectionist temporal classification (Graves et al. 2006): a recurrent encoder over input
frames with a softmax over the labels plus a blank, trained on unsegmented label sequences.

Shapes: B sequences, T frames, F features per frame, L labels (ids 1..L; 0 is the blank, also
the padding of ``targets``), S labels of the longest target. Decoders in
:mod:`lstmkit.models.ctc_decoding`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, fail
from ..layers import build_rnn, valid_steps
from .inputs import InputNoise

__all__ = ["CTCRecognizer", "BLANK", "frames_needed", "min_frames"]

#: The blank's id; labels are 1..L.
BLANK = 0


def min_frames(labels: Sequence) -> int:
    """The fewest frames that can emit ``labels`` under CTC: one per label, plus one blank between
    each two equal neighbours (:func:`frames_needed` of one sequence)."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


def frames_needed(targets: Tensor, target_lengths: Tensor) -> Tensor:
    """(B,) the fewest frames that can emit each target under CTC: one per label, plus one blank
    between each two equal neighbours."""
    S = targets.shape[1]
    repeats = (targets[:, 1:] == targets[:, :-1]) & valid_steps(target_lengths, S)[:, 1:] if S > 1 else \
        torch.zeros(targets.shape[0], 0, dtype=torch.bool)
    return target_lengths + repeats.sum(1)


class CTCRecognizer(nn.Module):
    """Frames (B, T, F) -> [input noise] -> [each frame repeated ``upsample`` times] -> recurrent
    network (deep, bidirectional or forward-only) -> linear -> log-probabilities over the blank
    and ``num_labels`` labels (B, T·upsample, L + 1).

    ``upsample`` > 1 lets outputs outnumber inputs (grapheme to phoneme: "x" is /K S/). With
    ``targets`` (B, S) and ``target_lengths`` (B,), ``forward`` also returns PyTorch's CTC loss,
    each sequence's negative log-likelihood over its target length, averaged over the batch; an
    input too short for its target is refused by name (CTC would give an infinite loss).
    A forward-only model also reads its input in chunks, carrying its state (:meth:`stream`):
    the streaming recogniser.

    >>> model = CTCRecognizer("lstm", 13, 16, 10)
    >>> x, lengths = torch.randn(2, 30, 13), torch.tensor([30, 22])
    >>> log_probs, loss = model(x, lengths, targets=torch.tensor([[3, 1, 4], [1, 5, 0]]),
    ...                         target_lengths=torch.tensor([3, 2]))
    >>> log_probs.shape, loss.dim()
    (torch.Size([2, 30, 11]), 0)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_labels: int, *, num_layers: int = 1,
                 bidirectional: bool = True, upsample: int = 1, input_noise: float = 0.0, **rnn_options):
        super().__init__()
        owner = "CTCRecognizer"
        check_positive_int(owner, "num_labels", num_labels)
        self.upsample = check_positive_int(owner, "upsample", upsample)
        self.noise = InputNoise(input_noise)
        self.rnn = build_rnn(cell, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                             **rnn_options)
        if self.rnn.output_size is None:
            fail(owner, "merge", "a merge mode with a known output size", repr(rnn_options.get("merge")))
        self.head = nn.Linear(self.rnn.output_size, num_labels + 1)
        self.bidirectional = bool(bidirectional)

    @property
    def num_labels(self) -> int:
        return self.head.out_features - 1

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """The output frames of inputs of ``lengths`` frames."""
        return lengths * self.upsample

    def _frames(self, x: Tensor) -> Tensor:
        x = self.noise(x)
        return x.repeat_interleave(self.upsample, dim=1) if self.upsample > 1 else x

    def forward(self, x: Tensor, lengths: Tensor | None = None, *, targets: Tensor | None = None,
                target_lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if not isinstance(x, Tensor) or x.dim() != 3:
            fail("CTCRecognizer", "x", "a (batch, frames, features) tensor",
                 f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__, kind=TypeError)
        B, T = x.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        out_lengths = self.output_lengths(lengths)
        y, _ = self.rnn(self._frames(x), lengths=out_lengths)
        log_probs = self.head(y).log_softmax(-1)                                    # (B, T', L + 1)
        if targets is None:
            return log_probs, None
        self._check_targets(targets, target_lengths, out_lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, blank=BLANK,
                          reduction="mean", zero_infinity=False)
        return log_probs, loss

    def _check_targets(self, targets: Tensor, target_lengths: Tensor | None, out_lengths: Tensor) -> None:
        owner, B = "CTCRecognizer", out_lengths.shape[0]
        if not isinstance(targets, Tensor) or targets.dim() != 2 or targets.shape[0] != B or targets.dtype != torch.long:
            fail(owner, "targets", f"an int64 tensor ({B}, labels)",
                 f"{targets.dtype} {tuple(targets.shape)}" if isinstance(targets, Tensor) else repr(targets))
        if not isinstance(target_lengths, Tensor) or target_lengths.shape != (B,):
            fail(owner, "target_lengths", f"an int64 tensor ({B},) with the targets",
                 tuple(target_lengths.shape) if isinstance(target_lengths, Tensor) else repr(target_lengths))
        if B and (int(target_lengths.min()) < 1 or int(target_lengths.max()) > targets.shape[1]):
            fail(owner, "target_lengths", f"values in [1, {targets.shape[1]}]", target_lengths.tolist())
        valid = valid_steps(target_lengths, targets.shape[1])
        labels = targets[valid]
        if labels.numel() and (int(labels.min()) < 1 or int(labels.max()) > self.num_labels):
            fail(owner, "targets", f"labels in [1, {self.num_labels}] (0 is the blank)",
                 sorted(set(labels.tolist()) - set(range(1, self.num_labels + 1)))[:10])
        short = (out_lengths < frames_needed(targets, target_lengths)).nonzero().flatten().tolist()
        if short:
            b = short[0]
            fail(owner, "x", f"at least as many frames as each target needs (one per label, and a blank between "
                 f"repeated labels; upsample={self.upsample})",
                 f"{len(short)} too short, the first: sequence {b} with {int(out_lengths[b])} output frames for "
                 f"{int(target_lengths[b])} labels needing {int(frames_needed(targets, target_lengths)[b])}")

    def stream(self, x: Tensor, state=None) -> tuple[Tensor, object]:
        """Log-probabilities of the next chunk of frames (B, t, F) -> (B, t·upsample, L + 1) and
        the state to pass with the chunk after it; the chunks together give what the whole input
        gives. Forward-only models only: a bidirectional one needs the whole input."""
        if self.bidirectional:
            fail("CTCRecognizer.stream", "model", "a forward-only model (bidirectional=False)",
                 "a bidirectional one, which reads the input from its end")
        y, state = self.rnn(self._frames(x), state)
        return self.head(y).log_softmax(-1), state
