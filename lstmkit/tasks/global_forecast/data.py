"""The series of a global forecasting run, whole: each one's history and test part, its group
(horizon and season), static values and covariates, from a competition or the user's long files."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...data.competitions import load_competition
from ...data.panels import Panel, read_long, to_panel

__all__ = ["Collection", "load_collection", "collection_from_frames"]


@dataclass
class Collection(Panel):
    """A panel whose series each run on past their history: ``y[i]`` is the history then the test
    part (the covariates likewise), ``n_train[i]`` the history's length, ``group[i]`` the series'
    group and ``groups``: group -> [horizon, season]."""

    n_train: list[int] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    groups: dict[str, list[int]] = field(default_factory=dict)


def _joined(train: Panel, test: Panel | None, where: str) -> dict:
    """Per series: the history followed by its test part (which must continue its steps)."""
    if test is None:
        return dict(y=train.y, steps=train.steps, ds=train.ds, hist=train.hist, futr=train.futr,
                    n_train=[len(v) for v in train.y])
    later = test.index()
    out = dict(y=[], steps=[], ds=[], hist=[], futr=[], n_train=[])
    for i, uid in enumerate(train.ids):
        j = later.get(uid)
        if j is not None and test.steps[j][0] != train.steps[i][-1] + 1:
            raise ValueError(f"{where}: the test part of series {uid!r} starts at step {test.steps[j][0]}, expected "
                             f"the step after its history's last ({train.steps[i][-1] + 1})")
        parts = [(train.y[i], train.steps[i], train.ds[i], train.hist[i], train.futr[i])]
        if j is not None:
            parts.append((test.y[j], test.steps[j], test.ds[j], test.hist[j], test.futr[j]))
        for key, k in (("y", 0), ("steps", 1), ("ds", 2), ("hist", 3), ("futr", 4)):
            out[key].append(np.concatenate([p[k] for p in parts]))
        out["n_train"].append(len(train.y[i]))
    unknown = sorted(set(test.ids) - set(train.ids))
    if unknown:
        raise ValueError(f"{where}: series {unknown[:3]} of the test data have no history in the training data")
    return out


def collection_from_frames(train_df, test_df=None, *, horizon: int, season: int, hist_exog=(), futr_exog=(),
                           static=(), freq: str | None = None, group_of: dict[str, str] | None = None,
                           groups: dict[str, list[int]] | None = None, where: str = "data") -> Collection:
    """A collection of long frames: ``train_df`` the histories, ``test_df`` (optional) what follows
    them. One group (``horizon``, ``season``) unless ``group_of`` maps each series to one of ``groups``."""
    columns = dict(hist_exog=tuple(hist_exog), futr_exog=tuple(futr_exog), static=tuple(static), freq=freq)
    train = to_panel(train_df, where=f"{where} (training)", **columns)
    test = None if test_df is None else to_panel(test_df, where=f"{where} (test)", **{**columns, "freq": train.freq})
    joined = _joined(train, test, where)
    if group_of is None:
        group_of, groups = {uid: "all" for uid in train.ids}, {"all": [horizon, season]}
    return Collection(ids=train.ids, **joined, group=[group_of[uid] for uid in train.ids], groups=groups,
                      static=train.static, freq=train.freq)


def load_collection(data) -> Collection:
    """The collection a run's ``data`` config names: a competition with its official split, or
    the user's files (the last ``test_size`` steps of each series tested when no test file is given)."""
    if data.dataset != "files":
        comp = load_competition(data.dataset, data.groups)
        info = comp.info.drop_duplicates("group")
        groups = {g: [int(h), int(s)] for g, h, s in zip(info["group"], info["horizon"], info["season"])}
        group_of = dict(zip(comp.info["unique_id"], comp.info["group"]))
        collection = collection_from_frames(comp.train, comp.test, horizon=0, season=1, group_of=group_of,
                                            groups=groups, where=f"dataset {data.dataset!r}")
        collection.static["group"] = list(collection.group)
        return collection
    where = f"data.train_file {str(data.train_file)!r}"
    frame = read_long(data.train_file, "data.train_file")
    test = read_long(data.test_file, "data.test_file") if data.test_file is not None else None
    columns = dict(hist_exog=data.hist_exog, futr_exog=data.futr_exog, static=data.static, freq=data.freq)
    collection = collection_from_frames(frame, test, horizon=data.horizon, season=data.season, where=where,
                                        **columns)
    if test is None:
        held = data.horizon if data.test_size is None else data.test_size
        collection.n_train = [n - held for n in collection.n_train]
    return collection
