"""The spoken-digits baseline: PocketSphinx (CMU's recogniser, PyPI ``pocketsphinx``) with its
bundled US-English acoustic model, restricted by a JSGF grammar to strings of digit words, on
the test utterances' audio (rebuilt from the corpus recipe)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from ...data.speech import SAMPLE_RATE, WORDS, Utterance, synthesize

__all__ = ["pocketsphinx_digits", "digits_decoder", "grammar_file", "GRAMMAR"]

GRAMMAR = f"""#JSGF V1.0;
grammar digits;
public <digits> = <digit>+;
<digit> = {' | '.join(WORDS)};
"""


@contextmanager
def grammar_file() -> Iterator[str]:
    """:data:`GRAMMAR` in a temporary file: PocketSphinx reads its grammar from a path."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "digits.gram")
        with open(path, "w") as f:
            f.write(GRAMMAR)
        yield path


def digits_decoder(grammar: str):
    """A PocketSphinx decoder of 16 kHz audio restricted to the grammar file ``grammar``."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise ImportError("the PocketSphinx baseline needs pocketsphinx: pip install 'lstmkit[speech]'") from None
    return Decoder(jsgf=grammar, samprate=SAMPLE_RATE, loglevel="FATAL")


def pocketsphinx_digits(utterances: Sequence[Utterance]) -> list[str]:
    """Each utterance's digit string as PocketSphinx hears it ("" when it finds nothing)."""
    words = {w: str(d) for d, w in enumerate(WORDS)}
    out = []
    with grammar_file() as grammar, ThreadPoolExecutor(os.cpu_count() or 1) as pool:   # synthesis in threads
        for audio in pool.map(synthesize, utterances):
            pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
            # a decoder per utterance: one decoder's cepstral mean adapts from utterance to
            # utterance, so each result would depend on those decoded before it
            decoder = digits_decoder(grammar)
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hypothesis = decoder.hyp()
            text = hypothesis.hypstr if hypothesis is not None else ""
            out.append("".join(words[w] for w in text.split() if w in words))
    return out
