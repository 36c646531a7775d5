"""Real-time factor of the streaming digit recogniser on one core, against PocketSphinx's.

A forward-only CTC run (``configs/ctc_digits_streaming.yaml``) hears test utterances of its
corpus in chunks of ``--chunk-ms`` of audio, as a live client sends them: log-mel features of
the chunk, the recurrent step over its frames from the carried state, and the decoder (best
path, or prefix beam search) advanced by them (the last frames, fewer than ``stack``, are left
out: the run's stacking pads them, a live stream drops them). PocketSphinx (its digits grammar) decodes the
same audio, fed in the same chunks. Real-time factor = processing seconds / audio seconds
(below 1: faster than real time); each utterance's audio is synthesised before the clock
starts. Medians of ``--reps`` interleaved repetitions.

    python benchmarks/bench_ctc_stream.py runs/ctc-digits-streaming
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lstmkit.data.speech import SAMPLE_RATE, DigitsRecipe, LogMelStream, synthesize
from lstmkit.models.ctc_decoding import BeamStream, GreedyStream
from lstmkit.runs import load_run
from lstmkit.tasks.ctc.pocketsphinx import digits_decoder, grammar_file


def _lstmkit(model, fitted, audio: np.ndarray, chunk: int, decoder) -> None:
    mean, std, stack = np.asarray(fitted.mean), np.asarray(fitted.std), fitted.stack
    features, state = LogMelStream(), None
    pending = np.zeros((0, 40), np.float32)
    pieces = [audio[start:start + chunk] for start in range(0, len(audio), chunk)]
    for k, piece in enumerate(pieces):
        frames = [features.push(piece)] + ([features.finish()] if k == len(pieces) - 1 else [])
        pending = np.concatenate([pending, *frames])
        usable = len(pending) // stack * stack
        if usable:
            x = (pending[:usable].reshape(-1, stack * 40) - mean) / std
            pending = pending[usable:]
            with torch.no_grad():
                log_probs, state = model.stream(torch.from_numpy(x.astype(np.float32))[None], state)
            decoder.push(log_probs[0].double().numpy())


def _pocketsphinx(decoder, audio: np.ndarray, chunk: int) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    decoder.start_utt()
    for start in range(0, len(pcm), chunk):
        decoder.process_raw(pcm[start:start + chunk].tobytes(), full_utt=False)
    decoder.end_utt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a forward-only ctc run on the digits corpus")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_run(args.run)
    task, meta, model = loaded.task, loaded.fitted, loaded.model
    recipe = DigitsRecipe.from_dict(meta.recipe)
    audios = [synthesize(u) for u in recipe.utterances()["test"][:args.utterances]]
    seconds = sum(len(a) for a in audios) / SAMPLE_RATE
    chunk = SAMPLE_RATE * args.chunk_ms // 1000
    beam = task.config.decode.beam
    with grammar_file() as grammar:
        sphinx = digits_decoder(grammar)
        sides = {"lstmkit, best path": lambda a: _lstmkit(model, meta, a, chunk, GreedyStream()),
                 f"lstmkit, beam {beam}": lambda a: _lstmkit(model, meta, a, chunk,
                                                             BeamStream(beam, prune=task.config.decode.prune)),
                 "PocketSphinx (digits grammar)": lambda a: _pocketsphinx(sphinx, a, chunk)}
        times: dict[str, list[float]] = {name: [] for name in sides}
        _lstmkit(model, meta, audios[0], chunk, GreedyStream())                      # warm up
        for _ in range(args.reps):
            for name, side in sides.items():
                start = time.perf_counter()
                for audio in audios:
                    side(audio)
                times[name].append(time.perf_counter() - start)
    print(f"{len(audios)} test utterances, {seconds:.1f} s of audio, chunks of {args.chunk_ms} ms, 1 thread, "
          f"median of {args.reps}")
    print("| recogniser | real-time factor |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values) / seconds:.4f} |")


if __name__ == "__main__":
    main()
