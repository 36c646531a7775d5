"""Seeded generators for the classic recurrent-network tasks (docs/classic_tasks.md §2).

Every generator takes ``batch`` and a ``seed`` (an int, or a ``numpy.random.Generator`` to draw a
stream of batches) and returns a :class:`SequenceBatch` (``x``, ``target``, ``mask``, ``lengths``,
``labels``): the same seed gives the same batch.
"""

from ._batch import Flat, SequenceBatch
from .arithmetic import adding_hs97, multiplication_hs97
from .long_lag import long_lag, very_long_lag
from .reber import (continual_reber, embedded_reber, embedded_reber_string, embedded_reber_strings, legal_next,
                    reber_string, top_k_correct)
from .surrogate import brnn_surrogate
from .temporal_order import temporal_order
from .two_sequence import two_sequence

__all__ = ["Flat", "SequenceBatch", "adding_hs97", "brnn_surrogate", "continual_reber", "embedded_reber",
           "embedded_reber_string", "embedded_reber_strings", "legal_next", "long_lag", "multiplication_hs97",
           "reber_string", "temporal_order", "top_k_correct", "two_sequence", "very_long_lag"]
