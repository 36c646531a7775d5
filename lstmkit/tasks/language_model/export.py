"""The language model as an ONNX graph: inputs ``tokens`` (batch, time) int64 (ids in the run's
vocabulary, in the metadata) and each layer's state ``state_K_J`` (zeros to start); outputs
``log_probs`` (batch, time, vocabulary) of the next token and the final states ``final_K_J``, to
feed back for the tokens that follow."""

from __future__ import annotations

import json

from ...export.api import language_model_logits, metadata_json, state_outputs
from ...export.graph import Graph
from ...models import LanguageModel
from .fitted import VocabularyFitted

__all__ = ["language_model_graph"]


def language_model_graph(g: Graph, model: LanguageModel, fitted: VocabularyFitted) -> dict[str, str]:
    logits, finals = language_model_logits(g, model)
    g.output(g.op("LogSoftmax", [logits], axis=2), "log_probs", "FLOAT", ["batch", "time", len(fitted.vocab)])
    state_outputs(g, finals, model)
    return {**metadata_json(fitted.to_dict(), "vocab", "level"), "ids": json.dumps("vocab index; a text starts after vocab[0], the "
                                                               "end of a sentence; vocab[1] is unknown")}
