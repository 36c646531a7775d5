"""The CRF layer against brute force: every tag sequence of tiny cases enumerated and scored."""

import itertools

import pytest
import torch

from lstmkit.layers import CRF, allowed_transitions

F64 = torch.float64


def _crf(K: int, *, allowed=None, seed: int = 0) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(K, allowed=allowed).double()
    with torch.no_grad():                                 # scores large enough to matter
        for p in crf.parameters():
            p.normal_(0, 1)
    return crf


def _brute(crf: CRF, emissions: torch.Tensor, length: int) -> dict[tuple, float]:
    """s(y) of every tag sequence of ``length`` steps (one sequence's emissions (T, K)), from the
    definition; forbidden transitions, starts and ends are left out."""
    K = crf.num_tags
    scores = {}
    for y in itertools.product(range(K), repeat=length):
        if not crf.allowed_start[y[0]] or not crf.allowed_end[y[-1]]:
            continue
        if any(not crf.allowed_transitions[a, b] for a, b in zip(y, y[1:])):
            continue
        s = crf.start[y[0]] + crf.end[y[-1]] + sum(emissions[t, y[t]] for t in range(length))
        s = s + sum(crf.transitions[a, b] for a, b in zip(y, y[1:]))
        scores[y] = float(s.detach())
    return scores


LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.mark.parametrize("constrained", [False, True])
def test_likelihood_viterbi_n_best_and_marginals_equal_brute_force(constrained):
    K = len(LABELS) if constrained else 3
    crf = _crf(K, allowed=allowed_transitions(LABELS, "BIO") if constrained else None)
    B, T = 3, 4
    emissions = torch.randn(B, T, K, dtype=F64, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([4, 1, 3])
    paths, best = crf.decode(emissions, lengths)
    ranked, ranked_scores = crf.decode(emissions, lengths, n_best=4)
    marginals = crf.marginals(emissions, lengths)
    for b in range(B):
        L = int(lengths[b])
        scores = _brute(crf, emissions[b], L)
        log_z = torch.logsumexp(torch.tensor(list(scores.values()), dtype=F64), 0)
        some = max(scores, key=scores.get) if b != 1 else next(iter(scores))
        tags = torch.zeros(1, T, dtype=torch.long)
        tags[0, :L] = torch.tensor(some)
        nll = crf(emissions[b:b + 1], tags, lengths[b:b + 1])
        assert torch.allclose(nll, log_z - scores[some], rtol=0, atol=1e-10)
        order = sorted(scores, key=scores.get, reverse=True)
        assert tuple(paths[b]) == order[0] and abs(float(best[b]) - scores[order[0]]) < 1e-10
        assert [tuple(p) for p in ranked[b]] == order[:4]
        assert torch.allclose(ranked_scores[b, :len(order[:4])], torch.tensor([scores[y] for y in order[:4]], dtype=F64))
        for t in range(L):
            for k in range(K):
                p = sum(torch.exp(torch.tensor(s, dtype=F64) - log_z) for y, s in scores.items() if y[t] == k)
                assert abs(float(marginals[b, t, k]) - float(p)) < 1e-10
        assert torch.allclose(marginals[b, :L].sum(-1), torch.ones(L, dtype=F64))
        assert torch.equal(marginals[b, L:], torch.zeros(T - L, K, dtype=F64))


def test_decoding_never_returns_a_forbidden_path():
    crf = _crf(len(LABELS), allowed=allowed_transitions(LABELS, "BIO"))
    with torch.no_grad():
        crf.transitions[0, 2] = 50.0                     # O -> I-PER: forbidden, however high its score
        crf.start[2] = 50.0
    emissions = torch.zeros(2, 5, len(LABELS), dtype=F64)
    emissions[:, :, 2] = 10.0
    paths, _ = crf.decode(emissions)
    for path in paths:
        labels = [LABELS[t] for t in path]
        assert labels[0] != "I-PER" and all(not (a == "O" and b == "I-PER") for a, b in zip(labels, labels[1:]))


def test_n_best_stops_where_fewer_sequences_exist():
    crf = _crf(2)
    paths, scores = crf.decode(torch.randn(1, 1, 2, dtype=F64), n_best=5)
    assert len(paths[0]) == 2 and torch.isinf(scores[0, 2:]).all()


def test_padding_never_changes_anything():
    crf = _crf(4)
    g = torch.Generator().manual_seed(2)
    emissions = torch.randn(2, 6, 4, dtype=F64, generator=g)
    tags = torch.randint(0, 4, (2, 6), generator=g)
    lengths = torch.tensor([6, 3])
    noisy_e, noisy_t = emissions.clone(), tags.clone()
    noisy_e[1, 3:] = 1e3 * torch.randn(3, 4, dtype=F64, generator=g)
    noisy_t[1, 3:] = -100                                 # e.g. an ignore index in the padding
    assert torch.equal(crf(emissions, tags, lengths, reduction="none"),
                       crf(noisy_e, noisy_t, lengths, reduction="none"))
    assert crf.decode(emissions, lengths)[0] == crf.decode(noisy_e, lengths)[0]
    assert torch.equal(crf.marginals(emissions, lengths), crf.marginals(noisy_e, lengths))
    alone = crf(emissions[1:, :3], tags[1:, :3], reduction="none")
    assert torch.allclose(crf(emissions, tags, lengths, reduction="none")[1:], alone, rtol=0, atol=1e-12)


def test_gradcheck():
    crf = _crf(3, allowed=allowed_transitions(["O", "B-X", "I-X"], "BIO"))
    emissions = torch.randn(2, 4, 3, dtype=F64, requires_grad=True)
    tags = torch.tensor([[1, 2, 2, 0], [1, 0, 0, 0]])
    lengths = torch.tensor([4, 2])
    params = (crf.transitions, crf.start, crf.end)

    def nll(e, transitions, start, end):
        return torch.func.functional_call(crf, {"transitions": transitions, "start": start, "end": end},
                                          (e, tags, lengths))
    assert torch.autograd.gradcheck(nll, (emissions, *params))
    crf(emissions, tags, lengths).backward()
    assert crf.transitions.grad[0, 2] == 0 and crf.start.grad[2] == 0     # forbidden: no gradient


def test_bioes_rules():
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    trans, start, end = allowed_transitions(labels, "BIOES")
    ok = {(a, b) for a in labels for b in labels if trans[labels.index(a), labels.index(b)]}
    assert ("B-X", "I-X") in ok and ("B-X", "E-X") in ok and ("I-X", "E-X") in ok and ("E-X", "B-X") in ok
    assert ("B-X", "O") not in ok and ("O", "I-X") not in ok and ("O", "E-X") not in ok and ("S-X", "I-X") not in ok
    assert [labels[i] for i in range(5) if start[i]] == ["O", "B-X", "S-X"]
    assert [labels[i] for i in range(5) if end[i]] == ["O", "E-X", "S-X"]


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c(torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)), ValueError,
     r"argument 'emissions' expected a \(batch, time, 3\) tensor, got shape \(2, 3, 4\)"),
    (lambda c: c(torch.randn(2, 3, 3), torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 0])), ValueError,
     r"argument 'lengths' expected values in \[1, 3\] \(an empty sequence has no tags\), got \[3, 0\]"),
    (lambda c: c(torch.randn(2, 3, 3), torch.full((2, 3), 5)), ValueError,
     r"argument 'tags' expected tag indices in \[0, 3\), got \[5\]"),
    (lambda c: c.decode(torch.randn(2, 3, 3), n_best=0), ValueError, r"argument 'n_best' expected a positive int"),
    (lambda c: allowed_transitions(["O", "X-PER"], "BIO"), ValueError, r"argument 'labels' expected 'O' or BIO"),
    (lambda c: allowed_transitions(["O"], "IOB2"), ValueError, r"argument 'scheme' expected one of"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call(CRF(3))


def test_float32_marginals_are_probabilities():
    torch.manual_seed(0)
    crf = CRF(12)
    emissions = 30 * torch.randn(16, 40, 12)               # confident scores: marginals near 0 and 1
    lengths = torch.randint(1, 41, (16,))
    marginals = crf.marginals(emissions, lengths)
    assert marginals.min() >= 0 and marginals.max() <= 1
    valid = torch.arange(40) < lengths[:, None]
    torch.testing.assert_close(marginals.sum(-1)[valid], torch.ones(int(valid.sum())), rtol=0, atol=1e-3)   # float32
