"""The encoder-decoder: attention weights, lengths, teacher-forced scores, greedy and sampling,
beam search against greedy, against its own scores and against brute-force enumeration, and
learning to reverse sequences."""

from __future__ import annotations

import itertools

import pytest
import torch

from lstmkit.models import Attention, Seq2Seq
from lstmkit.models.seq2seq import EOS_ID

KINDS = ["none", "additive", "dot", "general"]


def _model(attention: str, *, cell: str = "lstm", V: int = 12, end_bias: float = 1.5, **options) -> Seq2Seq:
    torch.manual_seed(0)
    if attention == "dot":                           # a dot product needs the encoder output as wide as the decoder
        options.setdefault("merge", "sum")
    model = Seq2Seq(cell, 15, V, 8, attention=attention, **options).double().eval()
    with torch.no_grad():
        model.output.bias[EOS_ID] += end_bias           # so that untrained hypotheses end now and then
    return model


def _batch():
    lengths = torch.tensor([6, 3, 1])
    source = torch.randint(3, 15, (3, 6), generator=torch.Generator().manual_seed(1)) * \
        (torch.arange(6) < lengths[:, None])
    target = torch.tensor([[5, 7, 9, EOS_ID], [4, EOS_ID, 0, 0], [EOS_ID, 0, 0, 0]])
    return source, lengths, target


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(kind):
    torch.manual_seed(0)
    attention = Attention(kind, 8, 8)
    memory, valid = torch.randn(3, 5, 8), torch.arange(5) < torch.tensor([5, 2, 1])[:, None]
    context, weights = attention(torch.randn(3, 8), attention.prepare(memory, valid))
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights[~valid] == 0).all() and (weights[valid] > 0).all()
    torch.testing.assert_close(context, torch.einsum("bs,bsk->bk", weights, memory))
    model = _model(kind)
    source, lengths, target = _batch()
    read = model.attention_weights(source, lengths, target)                        # (B, T, S)
    torch.testing.assert_close(read.sum(-1), torch.ones(3, 4, dtype=torch.float64))
    assert (read.masked_select(~(torch.arange(6) < lengths[:, None])[:, None, :]) == 0).all()
    with pytest.raises(ValueError, match="the memory size \\(6\\) for dot attention"):
        Attention("dot", 8, 6)


@pytest.mark.parametrize("kind", KINDS)
def test_a_padded_batch_equals_each_sentence_alone(kind):
    model = _model(kind, encoder_layers=2, decoder_layers=2, reverse_source=kind == "none")
    source, lengths, target = _batch()
    logits, _ = model(source, lengths, target)
    for b in range(3):
        alone, _ = model(source[b:b + 1, :lengths[b]], lengths[b:b + 1], target[b:b + 1])
        torch.testing.assert_close(logits[b:b + 1], alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_beam_of_one_is_greedy_and_hypotheses_carry_their_teacher_forced_scores(kind):
    model = _model(kind, cell="gru")
    source, lengths, _ = _batch()
    greedy = model.greedy(source, lengths, max_length=7)
    beam1 = model.beam_search(source, lengths, beam=1, max_length=7)
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam1]
    for penalty in ("none", "normalize", "gnmt"):
        for b, hypotheses in enumerate(model.beam_search(source, lengths, beam=4, max_length=7, n_best=4,
                                                         length_penalty=penalty)):
            scores = [h.score for h in hypotheses]
            assert scores == sorted(scores, reverse=True)
            for h in hypotheses:
                ended = h.tokens + [EOS_ID] if h.finished else h.tokens
                target = torch.tensor([ended])
                expected = float(model.score(source[b:b + 1], lengths[b:b + 1], target))
                assert h.log_prob == pytest.approx(expected, abs=1e-9)
                length = len(ended)
                divisor = {"none": 1.0, "normalize": length, "gnmt": ((5 + length) / 6) ** 0.6}[penalty]
                assert h.score == pytest.approx(h.log_prob / divisor, abs=1e-9)


def test_a_wide_beam_finds_the_brute_force_best_targets():
    model = _model("additive", V=5, end_bias=2.0)          # labels 3 and 4
    source, lengths, _ = _batch()
    for b in range(3):
        candidates = [list(c) for n in range(4) for c in itertools.product([3, 4], repeat=n)]
        scored = sorted(((float(model.score(source[b:b + 1], lengths[b:b + 1], torch.tensor([c + [EOS_ID]]))), c)
                         for c in candidates), reverse=True)
        found = model.beam_search(source[b:b + 1], lengths[b:b + 1], beam=16, max_length=4, n_best=3)[0]
        assert [h.tokens for h in found] == [c for _, c in scored[:3]]
        assert all(h.finished for h in found)


def test_sampling_is_seeded_and_temperature_zero_is_greedy():
    model = _model("dot")
    source, lengths, _ = _batch()
    draw = [model.sample(source, lengths, max_length=6, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert [h.tokens for h in draw[0]] == [h.tokens for h in draw[1]]
    assert [h.tokens for h in model.sample(source, lengths, max_length=6, temperature=0)] == \
        [h.tokens for h in model.greedy(source, lengths, max_length=6)]


def test_it_learns_to_reverse_short_sequences():
    torch.manual_seed(0)
    model = Seq2Seq("lstm", 10, 10, 32, attention="dot", bidirectional=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)

    def batch(n):
        lengths = torch.randint(2, 6, (n,), generator=generator)
        source = torch.randint(3, 10, (n, 5), generator=generator) * (torch.arange(5) < lengths[:, None])
        target = torch.zeros(n, 6, dtype=torch.long)
        for b, n_b in enumerate(lengths.tolist()):
            target[b, :n_b] = source[b, :n_b].flip(0)
            target[b, n_b] = EOS_ID
        return source, lengths, target

    model.train()
    for _ in range(300):
        source, lengths, target = batch(32)
        _, loss = model(source, lengths, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    source, lengths, target = batch(100)
    decoded = model.beam_search(source, lengths, beam=3, max_length=8)
    right = sum(h[0].tokens == source[b, :lengths[b]].flip(0).tolist() for b, h in enumerate(decoded))
    assert right >= 90, right


def test_bad_arguments_are_refused_by_name():
    model = _model("general")
    source, lengths, target = _batch()
    for kwargs, message in (({"beam": 0}, "'beam' expected a positive int"),
                            ({"beam": 2, "n_best": 3}, r"'n_best' expected at most the beam \(2\)"),
                            ({"beam": 2, "max_length": 0}, "'max_length' expected a positive int"),
                            ({"beam": 2, "length_penalty": "wu"}, "'length_penalty' expected one of")):
        with pytest.raises(ValueError, match=message):
            model.beam_search(source, lengths, **{"max_length": 5, **kwargs})
    with pytest.raises(ValueError, match=r"'source_lengths' expected values in \[1, 6\] \(an empty source"):
        model.greedy(source, torch.tensor([6, 0, 1]), max_length=5)
    with pytest.raises(ValueError, match="'attention' expected one of"):
        Seq2Seq("lstm", 5, 5, 4, attention="bahdanau")
    with pytest.raises(ValueError, match=r"'attention' expected 'dot' with an encoder output as wide as the decoder "
                                         r"\(4\).*got 'dot' with an encoder output of 8"):
        Seq2Seq("lstm", 5, 5, 4, attention="dot")
    with pytest.raises(ValueError, match="'targets' expected an int64 tensor"):
        model(source, lengths, target.float())
    smoothed = Seq2Seq("lstm", 15, 12, 8, label_smoothing=0.1)
    plain = Seq2Seq("lstm", 15, 12, 8)
    plain.load_state_dict(smoothed.state_dict())
    with torch.no_grad():
        assert float(smoothed(source, lengths, target)[1]) != float(plain(source, lengths, target)[1])
    with pytest.raises(ValueError, match=r"'targets' expected ids in \[2, 12\) padded with 0 after EOS_ID"):
        model(source, lengths, torch.tensor([[1, 2], [4, 2], [3, 2]]))
