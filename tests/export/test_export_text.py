"""ONNX export of the text tasks (lstmkit.export.text, lstmkit.export.crf), checked with ONNX
Runtime: the CRF's Viterbi and marginals against lstmkit's CRF, taggers with every character
encoder and output, and whole runs (sentiment, language model, tagging) against the task's
``predict``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lstmkit.export import export_run, to_onnx
from lstmkit.export.crf import marginals, viterbi
from lstmkit.export.graph import Graph
from lstmkit.export.lengths import lengths_input
from lstmkit.tasks.tagging.export import tagger_graph
from lstmkit.tasks.tagging.fitted import TaggerFitted
from lstmkit.layers import CRF, allowed_transitions
from lstmkit.models import CharCNN, CharRNN, SequenceClassifier, SequenceTagger
from lstmkit.runs import load_config
from lstmkit.runs import load_run
from lstmkit.train.runner import train

ort = pytest.importorskip("onnxruntime")

TOL = dict(rtol=1e-5, atol=1e-5)


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _lengths(batch: int, T: int) -> torch.Tensor:
    return torch.tensor([T, max(1, T // 2), max(1, T - 2)][:batch])


@pytest.mark.parametrize("forbidden", [False, True])
def test_the_crf_viterbi_and_marginals_equal_lstmkits(forbidden):
    torch.manual_seed(0)
    K = 5
    allowed = None
    if forbidden:   # some transitions, start and end tags forbidden: -inf scores in the graph
        allowed = (torch.rand(K, K) > 0.3, torch.tensor([1, 1, 0, 1, 0], dtype=torch.bool),
                   torch.tensor([1, 0, 1, 1, 1], dtype=torch.bool))
    crf = CRF(K, allowed=allowed)
    g = Graph(17)
    emissions, lens = g.input("emissions", "FLOAT", ["time", "batch", K]), lengths_input(g)
    tags, scores = viterbi(g, crf, emissions, lens)
    g.output(tags, "tags", "INT64", ["time", "batch"])
    g.output(scores, "scores", "FLOAT", ["batch"])
    g.output(marginals(g, crf, emissions, lens), "marginals", "FLOAT", ["time", "batch", K])
    session = _session(g.model("crf"))
    for T in (1, 2, 5, 17):
        for batch in (1, 3):
            e, lengths = 3 * torch.randn(batch, T, K), _lengths(batch, T)
            paths, best = crf.decode(e, lengths)
            got_tags, got_scores, got_marginals = session.run(None, {"emissions": e.transpose(0, 1).numpy(),
                                                                     "lengths": lengths.numpy()})
            for b, n in enumerate(lengths.tolist()):
                assert got_tags[:n, b].tolist() == paths[b] and (got_tags[n:, b] == -1).all()
            torch.testing.assert_close(torch.from_numpy(got_scores), best, **TOL)
            torch.testing.assert_close(torch.from_numpy(got_marginals).transpose(0, 1), crf.marginals(e, lengths),
                                       **TOL)


def _tagger(output: str, chars: str | None, vectors: bool) -> SequenceTagger:
    torch.manual_seed(1)
    encoder = {"cnn": CharCNN(12, embedding_size=4, filters=5, width=3),
               "rnn": CharRNN(12, embedding_size=4, hidden_size=3, cell="gru"), None: None}[chars]
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed = allowed_transitions(tags, "BIO") if output == "crf" else None
    return SequenceTagger("lstm", 20, 6, 5, embedding_size=4, output=output, char_encoder=encoder, allowed=allowed,
                          word_vectors=torch.randn(7, 3) if vectors else None).eval()


@pytest.mark.parametrize("output,chars,vectors", [("crf", "cnn", False), ("crf", "rnn", True), ("crf", None, False),
                                                  ("softmax", "cnn", True), ("softmax", "rnn", False)])
def test_a_tagger_exports_with_its_characters_and_output(output, chars, vectors):
    model = _tagger(output, chars, vectors)
    g = Graph(17)
    tagger_graph(g, model, TaggerFitted(lowercase=False, digits_to_zero=False, max_word_length=5, vocab=[], chars=[],
                                        tags=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], scheme="BIO"))
    session = _session(g.model("tagger"))
    for T, batch in ((1, 1), (6, 3), (17, 3)):
        lengths = _lengths(batch, T)
        words = torch.randint(1, 20, (batch, T))
        if vectors:
            words = torch.stack([words, torch.randint(0, 7, (batch, T))], -1)
        char_lengths = torch.randint(1, 6, (batch, T)) * (torch.arange(T) < lengths[:, None])   # padding words: 0
        chars = torch.randint(1, 12, (batch, T, 5)) * (torch.arange(5) < char_lengths[..., None])
        feeds = {"words": words, "lengths": lengths}
        if chars is not None and model.char_encoder is not None:
            feeds |= {"chars": chars, "char_lengths": char_lengths}
        extra = {"chars": chars, "char_lengths": char_lengths} if model.char_encoder is not None else {}
        paths = model.decode(words, lengths, **extra)
        probabilities = model.marginals(words, lengths, **extra)
        tags, confidence, got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        torch.testing.assert_close(torch.from_numpy(got), probabilities, **TOL)
        for b, n in enumerate(lengths.tolist()):
            assert tags[b, :n].tolist() == paths[b] and (tags[b, n:] == -1).all() and (confidence[b, n:] == 0).all()
            want = [float(probabilities[b, t, k]) for t, k in enumerate(paths[b])]
            np.testing.assert_allclose(confidence[b, :n], want, **TOL)


def test_a_classifier_over_token_ids_and_word_vectors_exports():
    torch.manual_seed(2)
    for vectors in (None, torch.randn(9, 3)):
        model = SequenceClassifier("gru", 4, 5, 3, vocab_size=30, embedding_size=4, pooling="max",
                                   word_vectors=vectors).eval()
        lengths = torch.tensor([6, 2, 4])
        x = torch.randint(1, 30, (3, 6)) * (torch.arange(6) < lengths[:, None])
        if vectors is not None:
            x = torch.stack([x, torch.randint(0, 9, (3, 6))], -1)
        logits, probabilities = _session(to_onnx(model)).run(None, {"x": x.numpy(), "lengths": lengths.numpy()})
        torch.testing.assert_close(torch.from_numpy(logits), model(x, lengths=lengths)[0], **TOL)


# whole runs against the task's predict -----------------------------------------------------
def _train(tmp_path, settings: list[str]):
    run = tmp_path / "run"
    train(load_config(None, [*settings, "trainer.progress_bar=false", "seed=3"]), run, quiet=True)
    out = tmp_path / "model.onnx"
    export_run(run, out)
    loaded = load_run(run)
    task, meta, model = loaded.task, loaded.fitted, loaded.model
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return task, meta, model, session, session.get_modelmeta().custom_metadata_map


def test_an_exported_sentiment_run_reproduces_predict(tmp_path):
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps({"text": " ".join(rng.choice(
            ["good", "great", "fun"] if i % 2 else ["bad", "dull", "awful"], 3)) + " film", "label": f"l{i % 2}"})
            + "\n" for i in range(n)))
    task, meta, model, session, properties = _train(tmp_path, [
        "task=sentiment", "data.dataset=files", f"data.train_file={files['train']}",
        f"data.valid_file={files['valid']}", f"data.test_file={files['test']}", "data.min_count=1",
        "model.embedding_size=4", "model.hidden_size=5", "optim.epochs=2"])
    texts = ["A great, fun film!", "dull", "an unseen word and bad"]
    expected = task.predict(model, meta, [{"text": t} for t in texts])
    vocab = {w: i + 2 for i, w in enumerate(json.loads(properties["vocab"]))}
    tokenizer = json.loads(properties["tokenizer"])
    tokens = [re.findall(tokenizer["token_pattern"], t.lower())[:tokenizer["max_length"]] for t in texts]
    lengths = np.array([len(t) for t in tokens])
    ids = np.zeros((3, lengths.max()), np.int64)
    for b, words in enumerate(tokens):
        ids[b, :len(words)] = [vocab.get(w, 1) for w in words]
    probabilities, labels = session.run(None, {"ids": ids, "lengths": lengths})
    classes = json.loads(properties["classes"])
    for p, label, want in zip(probabilities, labels, expected):
        assert classes[int(label)] == want["label"]
        np.testing.assert_allclose(p, [want["probabilities"][c] for c in classes], **TOL)


def test_an_exported_language_model_run_reproduces_predict(tmp_path):
    for name in ("train", "valid"):
        (tmp_path / f"{name}.txt").write_text("the cat sat on the mat\na dog ran\n" * 20)
    task, meta, model, session, properties = _train(tmp_path, [
        "task=language_model", "data.dataset=files", f"data.train_file={tmp_path / 'train.txt'}",
        f"data.valid_file={tmp_path / 'valid.txt'}", "data.batch_size=2", "data.bptt=5", "model.hidden_size=4",
        "model.num_layers=2", "optim.epochs=1"])
    (expected,) = task.predict(model, meta, [{"text": "the dog sat on a cat"}])
    vocab = {w: i for i, w in enumerate(json.loads(properties["vocab"]))}
    ids = [0] + [vocab.get(w, 1) for w in "the dog sat on a cat".split()] + [0]      # after and up to </s>
    feeds = {i.name: np.zeros((1, i.shape[1]), np.float32) for i in session.get_inputs() if i.name != "tokens"}
    log_probs, *_ = session.run(None, {"tokens": np.array([ids[:-1]]), **feeds})
    got = log_probs[0, np.arange(len(ids) - 1), ids[1:]]
    np.testing.assert_allclose(got, expected["log_probs"], rtol=1e-5, atol=2e-6)


def test_an_exported_tagging_run_reproduces_predict(tmp_path):
    from test_tagging import _ner_files
    train_file, valid_file, test_file = _ner_files(tmp_path, (40, 10, 10))
    task, meta, model, session, properties = _train(tmp_path, [
        "task=tagging", "data.dataset=files", f"data.train_file={train_file}", f"data.valid_file={valid_file}",
        f"data.test_file={test_file}", "model.hidden_size=6", "model.embedding_size=4", "model.char_size=4",
        "model.char_embedding_size=3", "optim.epochs=2", "data.baselines=false"])
    sentences = [["Mary", "Smith", "met", "Zed", "in", "Rome"], ["Ann"], ["saw", "Paris9"]]
    expected = task.predict(model, meta, [{"tokens": s} for s in sentences])
    vocab = {w: i + 2 for i, w in enumerate(json.loads(properties["vocab"]))}
    letters = {c: i + 2 for i, c in enumerate(json.loads(properties["chars"]))}
    lengths = np.array([len(s) for s in sentences])
    L = max(len(w) for s in sentences for w in s)
    words, chars = np.zeros((3, lengths.max()), np.int64), np.zeros((3, lengths.max(), L), np.int64)
    char_lengths = np.zeros((3, lengths.max()), np.int64)
    assert json.loads(properties["lowercase"]) and json.loads(properties["digits_to_zero"])
    for b, s in enumerate(sentences):
        for t, w in enumerate(s):     # words looked up lower-cased, digits as 0; characters as they are
            words[b, t], char_lengths[b, t] = vocab.get(re.sub(r"\d", "0", w.lower()), 1), len(w)
            chars[b, t, :len(w)] = [letters.get(c, 1) for c in w]
    tags, confidence, _ = session.run(None, {"words": words, "lengths": lengths, "chars": chars,
                                             "char_lengths": char_lengths})
    names = json.loads(properties["tags"])
    for b, want in enumerate(expected):
        assert [names[k] for k in tags[b, :lengths[b]]] == want["tags"]
        np.testing.assert_allclose(confidence[b, :lengths[b]], want["confidence"], rtol=1e-5, atol=2e-6)
