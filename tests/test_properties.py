"""Property tests: padding never matters, reversal is per sequence, streaming is exact."""

import torch
from hypothesis import given
from hypothesis import strategies as st

import lstmkit
from lstmkit import cells
from harness import ENGINES, F64, TOL, usable

names = st.sampled_from(cells.names())


@st.composite
def batches(draw):
    B = draw(st.integers(1, 4))
    T = draw(st.integers(1, 7))
    lengths = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))
    seed = draw(st.integers(0, 2**16))
    return B, T, torch.tensor(lengths), seed


@given(name=names, batch=batches(), pad=st.floats(-1e3, 1e3, allow_nan=False))
def test_valid_outputs_never_depend_on_padding(name, batch, pad):
    B, T, lengths, seed = batch
    torch.manual_seed(seed)
    bi = lstmkit.Bidirectional(cells.make(name, 2, 3), cells.make(name, 2, 3)).to(F64)
    x = torch.randn(B, T, 2, dtype=F64)
    padded = x.clone()
    pad_mask = torch.arange(T)[None, :] >= lengths[:, None]                 # (B, T)
    padded[pad_mask] = pad
    y1, s1 = bi(x, lengths=lengths)
    y2, s2 = bi(padded, lengths=lengths)
    # to rounding: BLAS may round the last bit differently with the memory alignment of a new tensor
    torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-12)
    assert not y1[pad_mask].any() and not y2[pad_mask].any()
    for a, b in zip(s1[0] + s1[1], s2[0] + s2[1]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@given(name=names, batch=batches())
def test_backward_direction_equals_each_sequence_reversed_alone(name, batch):
    B, T, lengths, seed = batch
    torch.manual_seed(seed)
    layer = lstmkit.Recurrent(cells.make(name, 2, 3).to(F64), reverse=True)
    x = torch.randn(B, T, 2, dtype=F64)
    y, final = layer(x, lengths=lengths)
    forward = lstmkit.Recurrent(layer.cell)
    for b in range(B):
        L = int(lengths[b])
        y_alone, s_alone = forward(x[b:b + 1, :L].flip(1))
        torch.testing.assert_close(y[b, :L], y_alone[0].flip(0), rtol=1e-12, atol=1e-12)
        for s, sa in zip(final, s_alone):
            torch.testing.assert_close(s[b], sa[0], rtol=1e-12, atol=1e-12)


@given(name=names, batch=batches(), cuts=st.lists(st.integers(0, 7), max_size=3), engine=st.sampled_from(ENGINES))
def test_chunked_streaming_equals_the_whole_sequence(name, batch, cuts, engine):
    B, T, lengths, seed = batch
    torch.manual_seed(seed)
    cell = cells.make(name, 2, 3).to(F64)
    engine = usable(cell, engine)
    layer = lstmkit.Recurrent(cell, engine=engine)
    x = torch.randn(B, T, 2, dtype=F64)
    y, final = layer(x, lengths=lengths)
    bounds = sorted({0, T, *[min(c, T) for c in cuts]})
    state, parts = None, []
    for a, b in zip(bounds, bounds[1:]):
        chunk_lengths = (lengths - a).clamp(0, b - a)
        out, state = layer(x[:, a:b], state, lengths=chunk_lengths)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, 1), y, **TOL[engine])
    for s, f in zip(state, final):
        torch.testing.assert_close(s, f, **TOL[engine])
