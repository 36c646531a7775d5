"""The spoken-digits baseline: PocketSphinx (CMU's recogniser, PyPI ``pocketsphinx``) with its
bundled US-English acoustic model, restricted by a JSGF grammar to strings of digit words, on
the test utterances' audio (rebuilt from the corpus recipe)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ...data.speech import SAMPLE_RATE, WORDS, Utterance, synthesize

__all__ = ["pocketsphinx_digits", "GRAMMAR"]

GRAMMAR = f"""#JSGF V1.0;
grammar digits;
public <digits> = <digit>+;
<digit> = {' | '.join(WORDS)};
"""


def _decoder(grammar: str):
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise ImportError("the PocketSphinx baseline needs pocketsphinx: pip install 'lstmkit[speech]'") from None
    return Decoder(jsgf=grammar, samprate=SAMPLE_RATE, loglevel="FATAL")


def pocketsphinx_digits(utterances: Sequence[Utterance]) -> list[str]:
    """Each utterance's digit string as PocketSphinx hears it ("" when it finds nothing)."""
    words = {w: str(d) for d, w in enumerate(WORDS)}
    with tempfile.TemporaryDirectory() as folder:
        grammar = os.path.join(folder, "digits.gram")
        with open(grammar, "w") as f:
            f.write(GRAMMAR)
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:        # synthesis in threads, decoding here
            out = []
            for audio in pool.map(synthesize, utterances):
                pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
                # a decoder per utterance: one decoder's cepstral mean adapts from utterance to
                # utterance, so each result would depend on those decoded before it
                decoder = _decoder(grammar)
                decoder.start_utt()
                decoder.process_raw(pcm, full_utt=True)
                decoder.end_utt()
                hypothesis = decoder.hyp()
                text = hypothesis.hypstr if hypothesis is not None else ""
                out.append("".join(words[w] for w in text.split() if w in words))
    return out
