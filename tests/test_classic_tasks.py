"""The classic-task generators against the spec (docs/classic_tasks.md §2): a generator bug
would silently invalidate every result, so each rule of the spec is checked here."""

import numpy as np
import pytest
import torch

from lstmkit.data.synthetic import (adding_hs97, continual_reber, embedded_reber, embedded_reber_string,
                                    embedded_reber_strings, legal_next, long_lag, multiplication_hs97, reber_string,
                                    temporal_order, top_k_correct, two_sequence, very_long_lag)
from lstmkit.data.synthetic.reber import REBER_TRANSITIONS, SYMBOLS
from lstmkit.data.synthetic.temporal_order import RELEVANT_WINDOWS


def test_reber_automaton_is_the_spec_table():
    assert REBER_TRANSITIONS == {0: (("T", 1), ("P", 2)), 1: (("S", 1), ("X", 3)), 2: (("T", 2), ("V", 4)),
                                 3: (("X", 2), ("S", 5)), 4: (("P", 3), ("V", 5))}
    assert SYMBOLS == "BTPSXVE"


def _accepts(inner: str) -> bool:
    state = 0
    for symbol in inner:
        moves = dict(REBER_TRANSITIONS.get(state, ()))
        if symbol not in moves:
            return False
        state = moves[symbol]
    return state == 5


def test_embedded_reber_strings_follow_the_grammar_and_legal_sets_contain_the_next_symbol():
    rng = np.random.default_rng(0)
    firsts = []
    for _ in range(500):
        s = embedded_reber_string(rng)
        assert len(s) >= 9 and s[0] == "B" and s[2] == "B" and s[-1] == "E" and s[-3] == "E"
        assert s[1] == s[-2] and s[1] in "TP"
        assert _accepts(s[3:-3])
        sets = legal_next(s)
        assert len(sets) == len(s) and sets[-1] == ""
        assert all(s[t + 1] in sets[t] for t in range(len(s) - 1))
        assert sets[-3] == s[1]                                             # the long-lag prediction
        firsts.append(s[1])
    assert 0.4 < firsts.count("T") / len(firsts) < 0.6
    r = reber_string(3)
    assert r[0] == "B" and r[-1] == "E" and _accepts(r[1:-1])


def test_legal_sets_by_hand_and_top_k_correctness():
    assert legal_next("BTBTXSETE") == ["TP", "B", "TP", "SX", "XS", "E", "T", "E", ""]
    batch = embedded_reber(4, seed=1)
    assert batch.x.shape[-1] == 7 and torch.equal(batch.mask.sum(1), batch.lengths)
    legal = batch.target
    assert top_k_correct(legal + 0.01 * torch.rand(legal.shape), legal)[batch.mask].all()
    swapped = legal.flip(-1)                                                # wrong units most active
    assert not top_k_correct(swapped, legal)[batch.mask].all()
    with pytest.raises(ValueError, match="argument 'string' expected embedded Reber strings"):
        legal_next("BTBTXXE")


def test_embedded_reber_train_and_test_strings_are_disjoint():
    train, test = embedded_reber_strings(256, 256, seed=4)
    assert len(train) == len(test) == 256 and not set(train) & set(test)
    assert embedded_reber_strings(10, 10, seed=4) == embedded_reber_strings(10, 10, seed=4)


def test_continual_reber_stream_has_no_resets_and_predicts_the_next_string():
    x, legal = continual_reber(400, seed=2)
    symbols = "".join(SYMBOLS[i] for i in x.argmax(1).tolist())
    assert x.shape == legal.shape == (400, 7)
    for t in range(399):
        assert legal[t, SYMBOLS.index(symbols[t + 1])] == 1                # next symbol always legal
    ends = [t for t in range(2, 399) if symbols[t] == "E" and symbols[t - 2] == "E"]
    assert ends and all(legal[t].tolist() == [1, 0, 0, 0, 0, 0, 0] for t in ends)   # string end -> B


@pytest.mark.parametrize("noisy", [False, True])
def test_long_lag_2a_2b(noisy):
    p = 12
    b = long_lag(400, p, noisy=noisy, seed=3)
    sym = b.x.argmax(-1)                                                    # (B, p)
    nxt = b.target.argmax(-1)
    assert b.x.shape == (400, p, p + 1) and b.mask.all()
    assert torch.equal(sym[:, 1:], nxt[:, :-1])                             # target = next symbol
    assert torch.equal(sym[:, 0], nxt[:, -1]) and torch.equal(sym[:, 0] - (p - 1), b.labels)
    middle = sym[:, 1:]
    assert (middle <= p - 2).all()
    if noisy:
        assert len(middle.unique()) == p - 1
    else:
        assert torch.equal(middle, torch.arange(p - 1).expand(400, -1))
    assert 0.4 < b.labels.float().mean() < 0.6


def test_very_long_lag_2c():
    q, p = 30, 20
    b = very_long_lag(2000, q, p, seed=5)
    assert b.x.shape[-1] == p + 4 and b.target.shape[-1] == 2
    assert (b.lengths >= q + 3).all()
    assert abs((b.lengths - (q + 3)).float().mean() - 9) < 0.8            # geometric, mean 9: length q+13
    for i in range(50):
        L = int(b.lengths[i])
        s = b.x[i, :L].argmax(-1)
        assert s[0] == p + 1 and s[1] == p + 2 + b.labels[i] and s[-1] == p
        assert (s[2:-1] < p).all()                                          # distractors a_1..a_p
        assert b.mask[i].nonzero().flatten().tolist() == [L - 1]
        assert b.target[i, L - 1].argmax() == b.labels[i]


@pytest.mark.parametrize("variant", ["a", "b", "c"])
def test_two_sequence(variant):
    T, N = 100, 3
    b = two_sequence(3000, T, N, variant=variant, seed=6, dtype=torch.float64)
    assert ((b.lengths >= T) & (b.lengths <= T + T // 10)).all()
    sign = 1 - 2 * b.labels.double()
    head = b.x[:, :N, 0]
    if variant == "b":
        assert abs((head - sign[:, None]).var() - 0.2) < 0.02
    else:
        assert torch.equal(head, sign[:, None].expand(-1, N))
    noise = torch.cat([b.x[i, N:int(b.lengths[i]), 0] for i in range(200)])
    assert abs(noise.mean()) < 0.02 and abs(noise.var() - 0.2) < 0.02
    last = b.target[torch.arange(3000), b.lengths - 1, 0]
    assert torch.equal(b.mask.sum(1), torch.ones(3000, dtype=torch.long))
    if variant == "c":
        clean = b.clean_target[torch.arange(3000), b.lengths - 1, 0]
        assert torch.equal(clean, torch.where(b.labels == 0, torch.tensor(0.2, dtype=torch.float64), 0.8))
        assert abs((last - clean).var() - 0.1) < 0.01
    else:
        assert torch.equal(last, (b.labels == 0).double())
    assert 0.45 < b.labels.float().mean() < 0.55


@pytest.mark.parametrize("multiply", [False, True])
def test_adding_and_multiplication(multiply):
    T = 100
    make = multiplication_hs97 if multiply else adding_hs97
    b = make(3000, T, seed=7, dtype=torch.float64)
    position0_marked = 0
    for i in range(3000):
        L = int(b.lengths[i])
        assert T <= L <= T + T // 10
        values, markers = b.x[i, :L, 0], b.x[i, :L, 1]
        marked = (markers == 1).nonzero().flatten().tolist()
        assert len(marked) == 2
        i1, i2 = marked if marked[0] < 10 else marked[::-1]
        assert i1 < 10 and i2 < T // 2                                      # among the first T/2 - 1 others
        assert markers[-1] == -1 and (markers[0] == -1 or 0 in marked)
        assert int((markers == 0).sum()) == L - 3 - int(markers[0] == -1)
        if 0 in marked:
            position0_marked += 1
            assert values[0] == (1.0 if multiply else 0.0)
        lo = 0.0 if multiply else -1.0
        assert (values >= lo).all() and (values <= 1).all()
        x1, x2 = values[i1], values[i2]
        expected = x1 * x2 if multiply else 0.5 + (x1 + x2) / 4
        assert b.target[i, L - 1, 0] == pytest.approx(float(expected), abs=1e-15)
        assert b.mask[i].nonzero().flatten().tolist() == [L - 1]
    assert 0 < position0_marked < 600                                       # ~1/10 + ~1/49 of sequences


@pytest.mark.parametrize("variant", ["a", "b"])
def test_temporal_order(variant):
    b = temporal_order(2000, variant=variant, seed=8)
    windows = RELEVANT_WINDOWS[variant]
    assert ((b.lengths >= 100) & (b.lengths <= 110)).all()
    counts = torch.bincount(b.labels, minlength=2 ** len(windows))
    assert len(counts) == 2 ** len(windows) and counts.min() > 2000 / len(counts) * 0.7
    for i in range(200):
        L = int(b.lengths[i])
        s = b.x[i, :L].argmax(-1)
        assert s[0] == 0 and s[-1] == 1
        relevant = (s >= 6).nonzero().flatten() + 1                         # 1-based positions
        assert len(relevant) == len(windows)
        assert all(lo <= int(t) <= hi for t, (lo, hi) in zip(relevant, windows))
        assert ((s[1:-1] >= 2) & (s[1:-1] <= 7)).all()
        bits = (s[relevant - 1] - 6).tolist()
        assert int(b.labels[i]) == int("".join(map(str, bits)), 2)          # XX->Q ... first most significant
        assert b.target[i, L - 1].argmax() == b.labels[i] and b.mask[i, L - 1] and b.mask[i].sum() == 1


def test_generators_are_seeded_and_check_their_arguments():
    for make in (lambda s: adding_hs97(4, seed=s), lambda s: two_sequence(4, seed=s), lambda s: temporal_order(4, seed=s),
                 lambda s: very_long_lag(4, seed=s), lambda s: long_lag(4, 10, noisy=True, seed=s),
                 lambda s: embedded_reber(4, seed=s)):
        assert torch.equal(make(1).x, make(1).x) and not torch.equal(make(1).target, make(2).target)
    with pytest.raises(ValueError, match="argument 'variant' expected 'a', 'b' or 'c', got 'd'"):
        two_sequence(2, variant="d")
    with pytest.raises(ValueError, match="argument 'T' expected an int >= 22"):
        adding_hs97(2, T=10)
    with pytest.raises(TypeError, match="argument 'seed' expected an int or a numpy.random.Generator"):
        temporal_order(2, seed="x")
    with pytest.raises(ValueError, match="argument 'variant' expected 'a' or 'b'"):
        temporal_order(2, variant="c")
