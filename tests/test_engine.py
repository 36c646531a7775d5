"""The compiled engine equals the reference loops: every cell, lengths, directions, stacks, dtypes."""

import warnings

import pytest
import torch

import lstmkit
from lstmkit import _engine, cells
from harness import (CASE_IDS, CASES, ENGINES, F64, assert_engine_equals_reference, assert_same, build,
                     outputs_and_grads, random_state, usable)

pytestmark = pytest.mark.skipif("fast" not in ENGINES, reason="engine turned off by LSTMKIT_ENGINE=reference")

TRUNCATED = [("lstm1997", {"truncate": True}),
             ("lstm1997", {"truncate": True, "cell_size": 2, "forget_gate": True, "recurrent": "cells"}),
             ("lstm1997", {"truncate": True, "recurrent": "none", "output_gate": False})]


# the cells with a kernel (the minimal RNNs and the mLSTM run their parallel forms instead:
# tests/test_minimal.py, tests/test_xlstm.py), and those with any fast form (a kernel or a parallel form)
KERNEL_CASES = [(case, i) for case, i in zip(CASES, CASE_IDS) if _engine.supports(build(*case))]
FAST_CASES = [(case, i) for case, i in zip(CASES, CASE_IDS) if usable(build(*case), "fast") == "fast"]


@pytest.mark.parametrize("name,options", [c for c, _ in KERNEL_CASES] + TRUNCATED,
                         ids=[i for _, i in KERNEL_CASES] + [f"truncated-{i}" for i in range(3)])
def test_engine_equals_reference_outputs_and_all_gradients(name, options):
    assert_engine_equals_reference(build(name, options), torch.randn(4, 7, 3, dtype=F64),
                                   (None, torch.tensor([7, 3, 0, 5])))


@pytest.fixture
def split_batches():
    """Two threads and blocks of any size: every batch of two or more rows is split across threads."""
    ext, threads = _engine.load(), torch.get_num_threads()
    previous = ext.block_work(1)
    torch.set_num_threads(2)
    yield
    ext.block_work(previous)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name,options", [c for c, _ in FAST_CASES] + TRUNCATED,
                         ids=[i for _, i in FAST_CASES] + [f"truncated-{i}" for i in range(3)])
def test_engine_equals_reference_with_the_batch_split_across_threads(name, options, split_batches):
    cell = build(name, options)
    x = torch.randn(5, 6, 3, dtype=F64)
    lengths = torch.tensor([6, 2, 0, 5, 6])
    for reverse in (False, True):
        state = random_state(cell, 5)
        out_f, grad_f = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="fast"), x, state, lengths)
        out_r, grad_r = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="reference"), x, state,
                                          lengths)
        assert_same(out_f, out_r)
        assert_same(grad_f, grad_r)


@pytest.mark.parametrize("name", ["lstm", "peephole", "cifg", "gru", "gru_cho", "elman", "layernorm_lstm", "lstm1997",
                                  "fgr"])
@pytest.mark.parametrize("batch,hidden", [(7, 70), (8, 64), (10, 33), (11, 70)])
def test_engine_own_float_kernel_agrees_with_blas_and_float64(name, batch, hidden):
    """The per-step float products through the engine's own kernel and through BLAS, against the
    float64 reference. Rows: 7, 8, 10, 11 are six-row tiles and 1, 2, 4 rows in pairs or a
    padded tile of 5; units: 70, 33 (N not a multiple of 16, the pair kernel's groups of three
    panels ending in 2 or 1), 64; the backward's K = 4 * 70 > 256 (two blocks of K)."""
    ext = _engine.load()
    torch.manual_seed(0)
    cell = cells.make(name, 5, hidden)
    x = torch.randn(batch, 9, 5)
    lengths = torch.tensor([9, 4, 9, 1, 7, 9, 2, 8, 3, 9, 5][:batch])

    def run(layer, x):
        x = x.detach().clone().requires_grad_()
        y, final = layer(x, lengths=lengths)
        flat = [t.double() for t in (y, *final)]
        g = torch.Generator().manual_seed(1)
        loss = sum((t * torch.randn(t.shape, generator=g, dtype=torch.float64)).sum() for t in flat)
        return flat + [gr.double() for gr in torch.autograd.grad(loss, [x, *layer.parameters()])]

    want = run(lstmkit.Recurrent(cell.double(), engine="reference"), x.double())
    cell.float()
    # the layer-norm cell divides by each row's standard deviation, which magnifies float32 rounding
    # (BLAS and the own kernel alike: 3.9e-4 at 11 rows and 70 units)
    tol = 1e-3 if name == "layernorm_lstm" else 2e-4
    previous = ext.own_gemm(-1)
    try:
        for own in (1, 0):
            ext.own_gemm(own)
            for got, expected in zip(run(lstmkit.Recurrent(cell, engine="fast"), x), want):
                torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    finally:
        ext.own_gemm(previous)


@pytest.fixture
def nan_filled_empty():
    """Deterministic mode: torch fills every uninitialised tensor with NaN, so a kernel that reads
    (even multiplies by zero) memory it never wrote gives NaN instead of passing by luck."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(previous[0])
    torch.utils.deterministic.fill_uninitialized_memory = previous[1]


@pytest.mark.parametrize("name,options", [c for c, _ in FAST_CASES] + TRUNCATED,
                         ids=[i for _, i in FAST_CASES] + [f"truncated-{i}" for i in range(3)])
def test_engine_never_reads_memory_it_did_not_write(name, options, nan_filled_empty):
    cell = build(name, options)
    x = torch.randn(4, 7, 3, dtype=F64)
    lengths = torch.tensor([7, 3, 1, 5])
    for reverse in (False, True):
        out_f, grad_f = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="fast"), x, None, lengths)
        out_r, grad_r = outputs_and_grads(lstmkit.Recurrent(cell, reverse=reverse, engine="reference"), x, None,
                                          lengths)
        assert all(torch.isfinite(t).all() for t in out_f + grad_f)
        assert_same(out_f, out_r)
        assert_same(grad_f, grad_r)


@pytest.mark.parametrize("name", ["lstm", "fgr", "gru", "gru_cho", "elman", "layernorm_lstm", "lstm1997"])
def test_engine_whole_sequence_buffers_of_several_mib(name, nan_filled_empty):
    """Buffers of 4 MiB and more are the engine's own huge-page mappings (filled with NaN here, as
    torch fills at::empty): outputs and gradients still equal the reference."""
    torch.manual_seed(0)
    cell = cells.make(name, 3, 64).double()
    T, B = 130, 64                                          # (T, B, 64) float64: 4.06 MiB, gates 4x
    x = torch.randn(B, T, 3, dtype=F64)
    lengths = torch.randint(1, T + 1, (B,))
    lengths[0] = T
    out_f, grad_f = outputs_and_grads(lstmkit.Recurrent(cell, engine="fast"), x, None, lengths)
    out_r, grad_r = outputs_and_grads(lstmkit.Recurrent(cell, engine="reference"), x, None, lengths)
    assert all(torch.isfinite(t).all() for t in out_f + grad_f)
    assert_same(out_f, out_r)
    assert_same(grad_f, grad_r, tol=1e-8)                    # 130 steps of float64 rounding (layer norm: 1e-9)


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole", "layernorm_lstm", "lstm1997"])
def test_engine_stacked_bidirectional_with_lengths_and_dropout_seed(cell):
    torch.manual_seed(0)
    fast = lstmkit.build_rnn(cell, 3, 4, num_layers=2, bidirectional=True, dropout=0.2, engine="fast").to(F64)
    ref = lstmkit.build_rnn(cell, 3, 4, num_layers=2, bidirectional=True, dropout=0.2, engine="reference").to(F64)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(3, 6, 3, dtype=F64)
    lengths = torch.tensor([6, 1, 4])
    torch.manual_seed(1)
    out_f, grad_f = outputs_and_grads_stack(fast, x, lengths)
    torch.manual_seed(1)
    out_r, grad_r = outputs_and_grads_stack(ref, x, lengths)
    assert_same(out_f, out_r)
    assert_same(grad_f, grad_r)


def outputs_and_grads_stack(net, x, lengths):
    x = x.detach().clone().requires_grad_()
    y, _ = net(x, lengths=lengths)
    loss = (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum()
    return [y], torch.autograd.grad(loss, [x, *net.parameters()])


def test_engine_inference_path_and_partial_gradients():
    torch.manual_seed(0)
    cell = cells.make("peephole", 3, 5).to(F64)
    x = torch.randn(2, 9, 3, dtype=F64)
    ref, _ = lstmkit.Recurrent(cell, engine="reference")(x)
    with torch.no_grad():
        y, _ = lstmkit.Recurrent(cell, engine="fast")(x)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    cell.requires_grad_(False)                  # only the input needs a gradient
    xg = x.clone().requires_grad_()
    y, _ = lstmkit.Recurrent(cell, engine="fast")(xg)
    y.sum().backward()
    xr = x.clone().requires_grad_()
    lstmkit.Recurrent(cell, engine="reference")(xr)[0].sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["lstm", "peephole", "fgr", "gru", "gru_cho", "layernorm_lstm", "lstm1997", "elman"])
def test_engine_parameter_gradients_when_the_input_needs_none(name):
    """The engine projects the input inside its kernels; with an input that needs no gradient (a
    first layer on raw features) a kernel skips the input's per-step product: the parameters'
    gradients still equal the reference's."""
    torch.manual_seed(0)
    cell = cells.make(name, 3, 5).to(F64)
    x = torch.randn(4, 7, 3, dtype=F64)
    lengths = torch.tensor([7, 2, 5, 7])
    grads = []
    for engine in ("fast", "reference"):
        layer = lstmkit.Recurrent(cell, engine=engine)
        y, final = layer(x, lengths=lengths)
        loss = (y * torch.linspace(-1, 1, y.shape[-1], dtype=F64)).sum() + final[0].pow(2).sum()
        grads.append(torch.autograd.grad(loss, list(layer.parameters())))
    assert_same(*grads)


def test_engine_matches_torch_in_float32():
    torch.manual_seed(0)
    for M in (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN):
        m = M(8, 16, num_layers=2, batch_first=True)
        net = lstmkit.from_torch(m, engine="fast")
        x = torch.randn(4, 30, 8)
        torch.testing.assert_close(net(x)[0], m(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted({name for (name, _), _ in FAST_CASES}))
def test_engine_float32_and_bfloat16_run_close_to_float64(name):
    torch.manual_seed(0)
    cell = cells.make(name, 3, 8)
    x = torch.randn(4, 12, 3)
    lengths = torch.tensor([12, 5, 9, 1])
    ref, _ = lstmkit.Recurrent(cell.double(), engine="reference")(x.double(), lengths=lengths)
    y32, _ = lstmkit.Recurrent(cell.float(), engine="fast")(x, lengths=lengths)
    torch.testing.assert_close(y32.double(), ref, rtol=1e-5, atol=1e-5)
    xb = x.bfloat16().requires_grad_()
    yb, _ = lstmkit.Recurrent(cell.bfloat16(), engine="fast")(xb, lengths=lengths)
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.double(), ref, rtol=0, atol=0.1)
    yb.float().sum().backward()
    assert torch.isfinite(xb.grad.float()).all()


def test_engine_is_not_differentiable_twice():
    cell = cells.make("lstm", 2, 3).to(F64)
    x = torch.randn(1, 4, 2, dtype=F64, requires_grad=True)
    y, _ = lstmkit.Recurrent(cell, engine="fast")(x)
    with pytest.raises(RuntimeError, match="second derivatives .* engine='reference'"):
        torch.autograd.grad(y.sum(), x, create_graph=True)
    y, _ = lstmkit.Recurrent(cell, engine="reference")(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)   # the reference loop has them
    g.sum().backward()


def test_engine_option_errors():
    with pytest.raises(ValueError,
                       match=r"Recurrent: argument 'engine' expected one of \['auto', 'fast', 'torch', 'reference'\]"):
        lstmkit.Recurrent(cells.make("lstm", 2, 3), engine="turbo")

    class Custom(cells.Elman):
        pass

    with pytest.raises(ValueError, match="no kernel for.*engine='fast' with Custom"):
        lstmkit.Recurrent(Custom(2, 3), engine="fast")
    assert not lstmkit.Recurrent(Custom(2, 3)).uses_engine()   # auto: the reference loop


def test_unavailable_engine_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(_engine, "_state", {"tried": False, "ext": None, "error": None})
    monkeypatch.setenv("LSTMKIT_ENGINE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")                 # a compiler that fails everything
    monkeypatch.setenv("LSTMKIT_ENGINE", "jit")              # and no binary built at install
    cell = cells.make("lstm", 2, 3)
    with pytest.warns(RuntimeWarning, match="fast engine could not be built or loaded"):
        layer = lstmkit.Recurrent(cell)
        y, _ = layer(torch.randn(2, 4, 2))
    assert not layer.uses_engine() and y.shape == (2, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # said once only
        layer(torch.randn(2, 4, 2))
    with pytest.raises(RuntimeError, match="compiled engine is unavailable"):
        lstmkit.Recurrent(cell, engine="fast")


def test_engine_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(_engine, "_state", {"tried": False, "ext": None, "error": None})
    monkeypatch.setenv("LSTMKIT_ENGINE", "reference")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _engine.load() is None
    assert "LSTMKIT_ENGINE" in _engine.load_error()


def test_engine_leaves_other_devices_and_dtypes_to_pytorch_or_the_reference_loop():
    cell = cells.make("lstm", 2, 3)
    x = torch.randn(2, 4, 2)
    meta = cells.make("lstm", 2, 3).to("meta")
    y, (h, c) = lstmkit.Recurrent(meta)(x.to("meta"))          # auto: PyTorch's own operators, which run anywhere
    assert y.shape == (2, 4, 3) and y.device.type == "meta"
    with pytest.raises(ValueError, match="expected a CPU tensor .*, got device meta$"):
        lstmkit.Recurrent(meta, engine="fast")(x.to("meta"))
    half = cells.make("gru", 2, 3).half()
    y16, _ = lstmkit.Recurrent(half)(x.half())                 # auto: float16 through PyTorch's GRU
    ref, _ = lstmkit.Recurrent(cells.make("gru", 2, 3), engine="reference")(x)
    assert y16.dtype == torch.float16 and y16.shape == ref.shape
    loop16, _ = lstmkit.Recurrent(cells.make("gru_cho", 2, 3).half())(x.half())   # no PyTorch form: the loop
    assert loop16.dtype == torch.float16
    with pytest.raises(ValueError, match=r"bfloat16 with engine=.fast. \(engine=.auto. runs PyTorch's operators or "
                                         r"the reference loop for others\), got dtype torch.float16$"):
        lstmkit.Recurrent(half, engine="fast")(x.half())
    assert _engine.accepts(x) is None and lstmkit.Recurrent(cell).uses_engine()


def test_engine_reuses_freed_buffers_and_hands_them_back():
    """Whole-sequence buffers of 4 MiB or more go to a cache when freed and serve the next call;
    reused memory gives the same results; empty_cache() and a zero capacity hand it all back."""
    ext = _engine.load()
    if _engine.cache_info()["capacity"] == 0:
        pytest.skip("no buffer cache here (not Linux, or LSTMKIT_ENGINE_CACHE_MB=0)")
    torch.manual_seed(0)
    layer = lstmkit.Recurrent(cells.make("lstm", 8, 128), engine="fast")
    x = torch.randn(16, 300, 8)                 # gate buffers of 16 * 300 * 512 floats: 9.4 MiB

    def grads():
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        y, _ = layer(xx)
        (y * y).sum().backward()
        return [xx.grad] + [p.grad.clone() for p in layer.parameters()]

    _engine.empty_cache()
    first = grads()
    after_first = _engine.cache_info()
    assert after_first["buffers"] > 0 and after_first["bytes"] >= 4 * 2**20
    second = grads()                            # the same sizes again: served from the cache
    assert _engine.cache_info() == after_first
    assert_same(first, second, tol=0)
    assert _engine.empty_cache() == after_first["bytes"]
    assert _engine.cache_info()["bytes"] == 0
    previous = ext.set_cache_capacity(0)
    try:
        grads()
        assert _engine.cache_info()["bytes"] == 0
    finally:
        ext.set_cache_capacity(previous)
    assert _engine.cache_info()["capacity"] == previous


def test_kernel_options_are_named_structs_built_by_keyword_only():
    ext = _engine.load(strict=True)
    with pytest.raises(TypeError):
        ext.GatedOptions(True, True, False, True, False, False, False, False)     # positional: refused
    options = ext.GatedOptions(input_gate=True, forget_gate=False, coupled=False, output_gate=True, identity_g=False,
                               identity_h=True, peepholes=True, gate_recurrence=False)
    assert not options.forget_gate and options.identity_h and options.peepholes
    with pytest.raises(RuntimeError, match="h expected scaled, tanh or identity"):
        ext.Options1997(cell_size=1, forget_gate=False, output_gate=True, g=ext.Squash1997.scaled,
                        h=ext.Squash1997.logistic, recurrent=ext.Recurrent1997.all, truncate=True)
    from lstmkit._engine.kernels import KERNELS, Kernel
    assert all(isinstance(adapter, Kernel) for adapter in KERNELS.values())
