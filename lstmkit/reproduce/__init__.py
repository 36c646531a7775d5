"""The experiments of Hochreiter & Schmidhuber (1997), reproduced (``lstmkit reproduce``).

Paper mode trains the paper's own networks with its online, truncated-gradient learner
(:mod:`._rtrl`, compiled with numba); modern mode trains registry cells with Adam; both are judged
by the paper's stopping criteria and put beside its tables. Needs the ``[reproduce]`` extra.
"""

from .experiments import EXPERIMENTS, Experiment, Row
from .paper_net import PaperNet, PaperWeights
from .runner import ModernLearner, ModernSpec, PaperLearner, TrialResult, run_trial, summarize

__all__ = ["EXPERIMENTS", "Experiment", "ModernLearner", "ModernSpec", "PaperLearner", "PaperNet", "PaperWeights",
           "Row", "TrialResult", "run_trial", "summarize"]
