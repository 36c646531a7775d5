"""CTC: the loss against a brute-force sum over every alignment, prefix beam search against the
brute-force most probable labelings, best path, shallow fusion, streaming, and the refusals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lstmkit.models import CTCRecognizer
from lstmkit.models.ctc_decoding import BeamStream, GreedyStream, best_path, collapse, prefix_beam_search


def _labelings(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log p(labels | x) of every labeling, summing every alignment (all (L+1)^T paths)."""
    T, C = log_probs.shape
    p = log_probs.detach().double().exp().numpy()
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        totals[collapse(path)] = totals.get(collapse(path), 0.0) + float(np.prod(p[np.arange(T), path]))
    return {labels: math.log(total) for labels, total in totals.items()}


def test_the_loss_is_the_brute_force_sum_over_alignments():
    torch.manual_seed(0)
    model = CTCRecognizer("lstm", 3, 4, 2, bidirectional=True).double()
    x, lengths = torch.randn(3, 5, 3, dtype=torch.float64), torch.tensor([5, 4, 3])
    targets, target_lengths = torch.tensor([[1, 2, 1], [2, 2, 0], [1, 0, 0]]), torch.tensor([3, 2, 1])
    log_probs, loss = model(x, lengths, targets=targets, target_lengths=target_lengths)
    expected = [-_labelings(log_probs[b, :n])[tuple(targets[b, :m].tolist())] / m
                for b, (n, m) in enumerate(zip(lengths.tolist(), target_lengths.tolist()))]
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64).mean(), rtol=1e-10, atol=1e-12)


def test_an_upsampled_model_repeats_each_frame_and_its_loss_is_finite():
    torch.manual_seed(0)
    model = CTCRecognizer("gru", 3, 4, 5, upsample=3)
    x = torch.randn(2, 2, 3)           # 2 letters, 4 phonemes: only an upsampled model can emit them
    log_probs, loss = model(x, torch.tensor([2, 1]), targets=torch.tensor([[1, 2, 3, 4], [5, 5, 0, 0]]),
                            target_lengths=torch.tensor([4, 2]))
    assert log_probs.shape == (2, 6, 6) and torch.isfinite(loss)


def test_beam_search_with_a_wide_beam_finds_the_most_probable_labelings_with_their_probabilities():
    torch.manual_seed(1)
    for T, C in ((1, 3), (4, 3), (6, 3), (5, 4)):
        log_probs = torch.randn(1, T, C).mul(2).log_softmax(-1)
        exact = sorted(_labelings(log_probs[0]).items(), key=lambda item: -item[1])
        (found,) = prefix_beam_search(log_probs, beam=10_000, n_best=3)
        assert [labels for labels, _ in found] == [labels for labels, _ in exact[:3]]
        np.testing.assert_allclose([s for _, s in found], [s for _, s in exact[:3]], rtol=1e-10)


def test_beam_search_is_at_least_as_probable_as_best_path_and_beam_one_is_best_path_on_peaked_outputs():
    torch.manual_seed(2)
    log_probs = torch.randn(200, 7, 4).mul(2).log_softmax(-1)
    greedy, path_scores = best_path(log_probs)
    for beam in (2, 4):                  # the beam's best sums alignments of at least the best path's mass
        for b, hypotheses in enumerate(prefix_beam_search(log_probs, beam=beam)):
            assert hypotheses[0][1] >= path_scores[b] - 1e-12
    # where each frame's top label has most of the mass (a trained model's outputs), a beam of one
    # keeps the prefix best path makes; with the mass spread, summing alignments may choose another
    top = torch.nn.functional.one_hot(torch.randint(0, 6, (8, 30)), 6)
    peaked = (torch.randn(8, 30, 6) + 6 * top).log_softmax(-1)
    assert (peaked.exp().amax(-1) > 0.5).all()
    lengths = torch.tensor([30, 11, 1, 0, 30, 5, 17, 30])
    assert [h[0][0] for h in prefix_beam_search(peaked, lengths, beam=1)] == best_path(peaked, lengths)[0]


def test_shallow_fusion_steers_the_search_and_weight_zero_leaves_it():
    torch.manual_seed(3)
    log_probs = torch.randn(3, 9, 4).log_softmax(-1)
    plain = prefix_beam_search(log_probs, beam=6, n_best=2)
    assert prefix_beam_search(log_probs, beam=6, n_best=2, scorer=lambda prefix, k: -5.0, lm_weight=0.0) == plain
    no_twos = prefix_beam_search(log_probs, beam=6, scorer=lambda prefix, k: -50.0 if k == 2 else 0.0, lm_weight=1.0)
    assert all(2 not in h[0][0] for h in no_twos)
    longer = prefix_beam_search(log_probs, beam=6, insertion_bonus=3.0)
    assert sum(len(h[0][0]) for h in longer) >= sum(len(h[0][0]) for h in plain)


def test_streaming_equals_the_whole_input():
    torch.manual_seed(4)
    model = CTCRecognizer("lstm", 5, 8, 6, num_layers=2, bidirectional=False).eval()
    x = torch.randn(2, 23, 5)
    with torch.no_grad():
        whole, _ = model(x)
        state, chunks = None, []
        for start in range(0, 23, 7):
            out, state = model.stream(x[:, start:start + 7], state)
            chunks.append(out)
    torch.testing.assert_close(torch.cat(chunks, 1), whole, rtol=1e-5, atol=1e-6)
    values = whole[0].double().numpy()
    greedy, beam = GreedyStream(), BeamStream(4, prune=1e-3)
    for start in range(0, 23, 5):
        greedy.push(values[start:start + 5])
        beam.push(values[start:start + 5])
    assert tuple(greedy.labels) == best_path(whole[:1])[0][0]
    assert beam.hypotheses(2) == prefix_beam_search(whole[:1], beam=4, n_best=2, prune=1e-3)[0]


def test_bad_inputs_are_refused_by_name():
    model = CTCRecognizer("lstm", 3, 4, 5)
    x = torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match=r"'x' expected at least as many frames as each target needs .*sequence 1 "
                                         r"with 3 output frames for 3 labels needing 4"):
        model(x, targets=torch.tensor([[1, 2, 3], [4, 4, 1]]), target_lengths=torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"'targets' expected labels in \[1, 5\] \(0 is the blank\), got \[0, 6\]"):
        model(x, targets=torch.tensor([[6, 0], [1, 1]]), target_lengths=torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="'target_lengths' expected values in"):
        model(x, targets=torch.tensor([[1, 2], [1, 1]]), target_lengths=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="forward-only model"):
        model.stream(x)
    log_probs = torch.randn(1, 4, 6).log_softmax(-1)
    with pytest.raises(ValueError, match="'beam' expected a positive int"):
        prefix_beam_search(log_probs, beam=0)
    with pytest.raises(ValueError, match=r"'n_best' expected at most the beam \(2\), got 3"):
        prefix_beam_search(log_probs, beam=2, n_best=3)
    with pytest.raises(ValueError, match="'prune' expected a probability"):
        prefix_beam_search(log_probs, prune=1.5)
    with pytest.raises(ValueError, match=r"'lengths' expected values in \[0, 4\]"):
        best_path(log_probs, torch.tensor([5]))
