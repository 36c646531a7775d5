"""The estimators: scikit-learn's conventions on in-memory data, the CLI's trainer and run directories."""

import json

import numpy as np
import pytest

pytest.importorskip("lightning", reason="the training extras are not installed")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402

from lstmkit import cli  # noqa: E402
from lstmkit.estimators import (AnomalyDetector, RecurrentClassifier, RecurrentForecaster,  # noqa: E402
                                      TextClassifier)


def sequences(n: int, seed: int = 0):
    """Variable-length 2-feature sequences whose class sets the sign of the mean."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = [rng.normal(0, 0.5, (int(rng.integers(4, 10)), 2)) + (1.0 if label else -1.0) for label in y]
    return X, np.where(y == 1, "up", "down")


SMALL = dict(cell="gru", hidden_size=6, num_layers=1, bidirectional=False, epochs=6, lr=0.02, batch_size=16,
             verbose=False)


def test_fit_predict_score_load_and_the_cli_on_the_run(tmp_path, capsys):
    X, y = sequences(60)
    clf = RecurrentClassifier(**SMALL, run_dir=str(tmp_path / "run")).fit(X, y)
    assert sorted(clf.classes_) == ["down", "up"] and clf.score(X, y) > 0.9
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(1), 1)
    assert (clf.run_dir_ / "config.yaml").is_file() and (clf.run_dir_ / "data" / "train.jsonl").is_file()
    assert clf.results_["valid"]["accuracy"] > 0.8 and "test" not in clf.results_     # no test split was given

    again = RecurrentClassifier.load(clf.run_dir_)
    assert again.hidden_size == 6 and again.cell == "gru"
    assert np.array_equal(again.predict(X), clf.predict(X))
    assert np.allclose(again.predict_proba(X), clf.predict_proba(X))
    assert clf.evaluate("valid")["split"] == "valid"
    saved = clf.save(tmp_path / "copy")
    assert np.array_equal(RecurrentClassifier.load(saved).predict(X[:3]), clf.predict(X[:3]))

    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"x": X[0].tolist()}) + "\n")
    assert cli.main(["predict", str(clf.run_dir_), str(inputs)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == clf.predict(X[:1])[0]


def test_labels_keep_their_type_and_the_same_seed_gives_the_same_model():
    X, y = sequences(40)
    numeric = (y == "up").astype(int) * 10 + 2                       # 2 and 12: "12" < "2" as strings
    a = RecurrentClassifier(**SMALL).fit(X, numeric)
    b = RecurrentClassifier(**SMALL).fit(X, numeric)
    assert a.classes_.tolist() == [2, 12] and set(a.predict(X).tolist()) <= {2, 12}
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_scikit_learn_model_selection_works():
    X, y = sequences(48, seed=1)
    estimator = RecurrentClassifier(**SMALL)
    params = estimator.get_params()
    assert params["hidden_size"] == 6 and clone(estimator).get_params() == params
    assert estimator.set_params(hidden_size=4) is estimator and estimator.hidden_size == 4
    scores = cross_val_score(RecurrentClassifier(**SMALL), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    search = GridSearchCV(RecurrentClassifier(**SMALL), {"hidden_size": [3, 6]}, cv=2).fit(X, y)
    assert search.best_params_["hidden_size"] in (3, 6) and search.score(X, y) > 0.8


def test_bad_input_is_refused_with_the_argument_named():
    X, y = sequences(10)
    clf = RecurrentClassifier(**SMALL)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(X)
    bad = [x.copy() for x in X]
    bad[3][1, 0] = np.nan
    with pytest.raises(ValueError, match="argument 'X' expected finite numbers, got nan or inf at index 3"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="argument 'y' expected 10 labels"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X, ["a"] * 10)
    with pytest.raises(ValueError, match="one feature count"):
        clf.fit(X[:-1] + [np.zeros((3, 5))], y)
    with pytest.raises(TypeError, match="argument 'X' expected a list of strings"):
        TextClassifier(verbose=False).fit("not a list", ["a"])
    with pytest.raises(TypeError, match="argument 'y' expected a list of labels, got NoneType"):
        clf.fit(X, None)
    with pytest.raises(ValueError, match="argument 'y' expected class labels, got continuous values"):
        clf.fit(X, np.linspace(0.05, 0.95, 10))
    with pytest.raises(ValueError, match="argument 'y' expected one label per sequence, got an array of shape"):
        clf.fit(X, np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"expected at least 2 examples of each class .* got 1 of \['0', '1'"):
        RecurrentClassifier(**SMALL).fit(X, np.arange(10))
    with pytest.raises(ValueError, match="argument 'X' expected at least one of .*, got none"):
        clf.fit([], [])
    fitted = RecurrentClassifier(**SMALL).fit(*sequences(20))
    with pytest.raises(ValueError, match="argument 'X' expected at least one of .*, got none"):
        fitted.predict([])
    with pytest.raises(TypeError, match="argument 'X' expected a list of histories, got NoneType"):
        RecurrentForecaster(verbose=False).predict(None)


def test_a_run_dir_pattern_gives_each_fit_its_own_run(tmp_path):
    X, y = sequences(30, seed=2)
    fixed = RecurrentClassifier(**SMALL, run_dir=str(tmp_path / "fixed"))
    fixed.fit(X, y)
    with pytest.raises(FileExistsError, match=r"is not empty; .*'runs/model-\{n\}'"):
        clone(fixed).fit(X, y)
    scores = cross_val_score(RecurrentClassifier(**SMALL, run_dir=str(tmp_path / "cv-{n}")), X, y, cv=3,
                             error_score="raise")
    assert np.isfinite(scores).all()
    assert sorted(p.name for p in tmp_path.glob("cv-*")) == ["cv-0", "cv-1", "cv-2"]
    assert all((p / "config.yaml").is_file() for p in tmp_path.glob("cv-*"))


def test_a_temporary_run_directory_goes_with_its_estimator():
    import gc
    import pickle
    X, y = sequences(20, seed=3)
    clf = RecurrentClassifier(**SMALL).fit(X, y)
    first = clf.run_dir_
    assert first.is_dir()
    copy = pickle.loads(pickle.dumps(clf))                  # a copy predicts, and owns no directory
    assert np.array_equal(copy.predict(X[:3]), clf.predict(X[:3]))
    clf.fit(X, y)                                           # a new fit: the old temporary run goes
    assert not first.exists() and clf.run_dir_.is_dir()
    second = clf.run_dir_
    clf.cleanup()
    assert not second.exists()
    clf.fit(X, y)
    third = clf.run_dir_
    del clf, copy
    gc.collect()
    assert not third.exists()


def test_text_classifier_learns_words():
    words = {"pos": ["good", "great", "fine", "superb"], "neg": ["bad", "awful", "poor", "dire"]}
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(120):
        label = "pos" if i % 2 else "neg"
        texts.append(" ".join(rng.choice(words[label], 3)) + " film")
        labels.append(label)
    clf = TextClassifier(hidden_size=8, embedding_size=8, epochs=6, lr=0.02, min_count=1, verbose=False)
    clf.fit(texts, labels)
    assert clf.predict(["good great film", "awful dire film"]).tolist() == ["pos", "neg"]


def test_forecaster_and_anomaly_detector_on_a_sine():
    t = np.arange(600)
    series = np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.1, len(t))
    forecaster = RecurrentForecaster(cell="gru", hidden_size=16, window=48, horizon=6, season=24, epochs=8,
                                     lr=0.01, verbose=False).fit(series)
    assert forecaster.results_["test"]["lstmkit"]["mase"] < 1.0
    histories = [series[i:i + 48] for i in (0, 100, 200)]
    futures = [series[i + 48:i + 54] for i in (0, 100, 200)]
    assert forecaster.predict(histories).shape == (3, 6) and forecaster.score(histories, futures) > 0.8

    detector = AnomalyDetector(cell="gru", hidden_size=8, window=24, smooth=4, epochs=5, lr=0.01,
                               verbose=False).fit(series)
    test = series.copy()
    test[400:404] += 3.0
    scores, flags = detector.score_samples(test), detector.predict(test)
    assert 398 <= int(scores.argmax()) <= 410 and flags.shape == test.shape and flags[400:406].min() == -1
