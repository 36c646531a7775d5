"""Text from a trained language model (a run directory of the ``language_model`` task), token by
token as it is produced: what ``lstmkit generate`` prints, from Python.

>>> generator = TextGenerator.load("runs/language_model-ptb-...")          # doctest: +SKIP
>>> for token in generator.tokens("the company said", max_tokens=20, top_p=0.9, seed=1):  # doctest: +SKIP
...     print(token, end=" ", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...data import text
from ...models.generation import beam_search, generate, generate_scored
from ...runs import load_run
from .fitted import VocabularyFitted

__all__ = ["TextGenerator", "Piece"]


@dataclass(frozen=True)
class Piece:
    """One generated token as text: ``text`` is what it adds after the text before it (a separator
    before a token that follows another, a new line for ``<eos>``), ``logprob`` its log-probability
    under the model, ``top`` the most probable pieces of its step with theirs (most probable first)."""

    token: str
    text: str
    logprob: float
    top: dict[str, float]


class TextGenerator:
    """A trained language model with its vocabulary. The prompt is read once; each new token is
    one recurrent step from the carried state (:func:`lstmkit.models.generation.generate`)."""

    def __init__(self, task, fitted: VocabularyFitted, model):
        self.task, self.fitted, self.model = task, fitted, model.eval()
        self.vocab = fitted.vocab
        self.eos = self.vocab.index(text.EOS)

    @classmethod
    def load(cls, run: str | Path) -> TextGenerator:
        """The model of a run directory (or checkpoint) of a task that generates text (``Task.generator``)."""
        return load_run(run).generator()

    @property
    def separator(self) -> str:
        """What goes between two tokens in text: a space for words, nothing for characters."""
        return self.fitted.separator

    def unknown(self, prompt: str) -> list[str]:
        """The prompt's tokens the vocabulary lacks (the model reads them as ``<unk>``)."""
        known = set(self.vocab)
        return [t for t in self.fitted.tokenize(prompt) if t not in known]

    def count(self, prompt: str) -> int:
        """How many tokens the model reads of ``prompt``."""
        return len(self.fitted.tokenize(prompt))

    def _prompt_ids(self, prompt: str) -> list[int]:
        """``<eos>`` (a sentence starts) then the prompt's tokens."""
        return self.fitted.ids([text.EOS, *self.fitted.tokenize(prompt)]).tolist()

    def tokens(self, prompt: str = "", *, max_tokens: int = 50, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None) -> Iterator[str]:
        """New tokens after ``prompt`` (``<eos>`` ends a sentence and generation goes on), sampled
        at ``temperature`` (0: the most probable) from the ``top_k`` / ``top_p`` most probable;
        the same ``seed`` gives the same text."""
        for token in generate(self.model, self._prompt_ids(prompt), max_tokens=max_tokens, temperature=temperature,
                              top_k=top_k, top_p=top_p, seed=seed):
            yield self.vocab[token]

    def pieces(self, prompt: str = "", *, max_tokens: int = 50, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None, top: int = 0) -> Iterator[Piece]:
        """:meth:`tokens` as the :class:`Piece` each adds to the text: ``prompt`` followed by every
        piece's text (and a final new line) is what ``lstmkit generate`` prints. ``top``: how many
        of each step's most probable pieces to give with their log-probabilities."""
        previous = prompt
        for token, logits in generate_scored(self.model, self._prompt_ids(prompt), max_tokens=max_tokens,
                                             temperature=temperature, top_k=top_k, top_p=top_p, seed=seed):
            log_probs = logits.double().log_softmax(-1)                                   # (V,)
            best = log_probs.topk(min(top, len(self.vocab))) if top else None
            alternatives = {} if best is None else {self._text(self.vocab[int(i)], previous): float(v)
                                                    for v, i in zip(best.values, best.indices)}
            word = self.vocab[token]
            yield Piece(word, self._text(word, previous), float(log_probs[token]), alternatives)
            previous = "" if token == self.eos else word

    def _text(self, token: str, previous: str) -> str:
        return "\n" if token == text.EOS else f"{self.separator if previous else ''}{token}"

    def beam(self, prompt: str = "", *, beam: int = 5, max_tokens: int = 50) -> list[tuple[list[str], float]]:
        """The ``beam`` most probable continuations of ``prompt`` up to the end of its sentence
        (``<eos>``, included) or ``max_tokens``, best first, with their log-probabilities."""
        found = beam_search(self.model, self._prompt_ids(prompt), beam=beam, max_tokens=max_tokens, stop=self.eos)
        return [([self.vocab[t] for t in tokens], score) for tokens, score in found]
