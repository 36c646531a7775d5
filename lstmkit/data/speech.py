"""Spoken digit strings, synthesised here with espeak-ng, and the audio features CTC models read.

No corpus of recorded speech of useful size ships in a package, so the spoken-digits corpus is
made: strings of 1-7 digits, each spoken by one of espeak-ng's voices (an English accent with one
of its voice variants), at a drawn speed and pitch, with white noise at a drawn signal-to-noise
ratio. **The voices are synthetic**: figures on this corpus say how a model does on espeak-ng's
speech, not on people's. The variants are split between train, valid and test, so the test
voices are never heard in training (a speaker-independent test).

Everything is drawn from the :class:`DigitsRecipe`'s seed, so a recipe always gives the same
corpus; its utterances (text, voice, speed, pitch, noise) are recorded beside the cached
features, and :func:`synthesize` rebuilds any one's audio (the PocketSphinx baseline reads it).

| corpus | source | size (default recipe) | licence |
|---|---|---|---|
| ``digits`` | espeak-ng 1.51 (Debian ``espeak-ng``), 7 English accents × 101 variants | 8,000 / 800 / 1,000 utterances, 81 / 10 / 10 variants | GPL-3 synthesiser; the corpus is generated, yours |

Features: log-mel filterbanks of 16 kHz audio (librosa: 25 ms windows every 10 ms, 40 bands).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .datasets import MissingDataPackage

__all__ = ["SAMPLE_RATE", "MIN_RATE", "MAX_SECONDS", "WORDS", "ACCENTS", "DigitsRecipe", "Utterance", "variants", "synthesize", "log_mel",
           "LogMelStream",
           "read_audio", "load_digits", "cache_dir"]

SAMPLE_RATE = 16000
MIN_RATE = 4000              # Hz: the lowest sample rate an audio file may have (telephone speech is 8 kHz)
MAX_SECONDS = 600            # the longest recording read at once
N_MELS = 40
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
_INSTALL = "apt-get install espeak-ng (Debian/Ubuntu; the README's set-up does this)"


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise MissingDataPackage(f"the spoken-digits corpus is synthesised with espeak-ng, which is not installed: "
                                 f"{_INSTALL}")
    return path


@lru_cache(maxsize=1)
def variants() -> tuple[str, ...]:
    """espeak-ng's voice variants, sorted (the voices the corpus draws from)."""
    listing = subprocess.run([_espeak(), "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[4].removeprefix("!v/") for line in listing.splitlines()[1:] if len(line.split()) >= 5]
    return tuple(sorted(set(names)))


@lru_cache(maxsize=1)
def espeak_version() -> str:
    return subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True).stdout.split(":")[1] \
        .split()[0]


@dataclass(frozen=True)
class Utterance:
    """One utterance of the corpus: what is said and how (everything :func:`synthesize` needs)."""

    digits: str
    accent: str
    variant: str
    speed: int              # words per minute
    pitch: int              # espeak-ng's 0-99
    snr: float | None       # dB of white noise; None: clean
    seed: int               # of the noise

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def text(self) -> str:
        return " ".join(WORDS[int(d)] for d in self.digits)


@dataclass(frozen=True)
class DigitsRecipe:
    """How the spoken-digits corpus is drawn: sizes, string lengths, speeds, pitches, noise levels
    and how many voice variants only valid and test hear; ``seed`` draws everything."""

    train: int = 8000
    valid: int = 800
    test: int = 1000
    min_digits: int = 1
    max_digits: int = 7
    speeds: tuple[int, int] = (120, 230)
    pitches: tuple[int, int] = (10, 90)
    snrs: tuple[float | None, ...] = (None, 20.0, 10.0, 5.0)
    valid_voices: int = 10
    test_voices: int = 10
    seed: int = 0
    accents: tuple[str, ...] = field(default=ACCENTS)

    @classmethod
    def from_dict(cls, recorded: dict) -> DigitsRecipe:
        """The recipe recorded as ``asdict(recipe)`` in a run's metadata (JSON turned its tuples into lists)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})

    def voices(self) -> dict[str, list[str]]:
        """The variants of each split: disjoint, drawn from the seed."""
        names = list(variants())
        if self.valid_voices + self.test_voices >= len(names):
            raise ValueError(f"DigitsRecipe: valid_voices + test_voices expected fewer than the {len(names)} "
                             f"espeak-ng variants, got {self.valid_voices + self.test_voices}")
        order = np.random.default_rng([self.seed, 1]).permutation(len(names))
        test, valid = order[:self.test_voices], order[self.test_voices:self.test_voices + self.valid_voices]
        train = order[self.test_voices + self.valid_voices:]
        return {split: sorted(names[i] for i in index) for split, index in
                (("train", train), ("valid", valid), ("test", test))}

    def utterances(self) -> dict[str, list[Utterance]]:
        out = {}
        for k, (split, voices) in enumerate(self.voices().items()):
            rng = np.random.default_rng([self.seed, 2, k])
            n = getattr(self, split)
            lengths = rng.integers(self.min_digits, self.max_digits + 1, n)
            out[split] = [Utterance(digits="".join(map(str, rng.integers(0, 10, length))),
                                    accent=self.accents[rng.integers(len(self.accents))],
                                    variant=voices[rng.integers(len(voices))],
                                    speed=int(rng.integers(self.speeds[0], self.speeds[1] + 1)),
                                    pitch=int(rng.integers(self.pitches[0], self.pitches[1] + 1)),
                                    snr=self.snrs[rng.integers(len(self.snrs))], seed=int(rng.integers(2 ** 31)))
                          for length in lengths]
        return out

    def key(self) -> str:
        """What the cached corpus is named by: the recipe, espeak-ng's version, the features."""
        text = json.dumps([asdict(self), espeak_version(), SAMPLE_RATE, N_MELS], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _librosa():
    try:
        import librosa
    except ImportError:
        raise MissingDataPackage("audio features need librosa: pip install 'lstmkit[speech]'") from None
    return librosa


def synthesize(utterance: Utterance) -> np.ndarray:
    """The utterance's audio: float32 mono at 16 kHz, with its noise."""
    import soundfile
    wav = subprocess.run([_espeak(), "-v", utterance.voice, "-s", str(utterance.speed), "-p", str(utterance.pitch),
                          "--stdout", utterance.text], capture_output=True, check=True).stdout
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    audio = _librosa().resample(audio, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    if utterance.snr is not None:
        power = float(np.mean(audio.astype(np.float64) ** 2))
        noise = np.random.default_rng(utterance.seed).normal(0.0, np.sqrt(power / 10 ** (utterance.snr / 10)),
                                                              audio.shape)
        audio = (audio + noise).astype(np.float32)
    return audio


_WINDOW, _HOP = 400, 160          # 25 ms windows every 10 ms at 16 kHz


def _mel(audio: np.ndarray, center: bool) -> np.ndarray:
    mel = _librosa().feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=_WINDOW, hop_length=_HOP, n_mels=N_MELS,
                                            fmin=20, fmax=SAMPLE_RATE // 2, center=center, pad_mode="reflect")
    return np.log(mel + 1e-6).T.astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(frames, 40) log-mel features of 16 kHz audio: 25 ms windows every 10 ms, the first
    centred on the first sample (the audio reflected at both ends)."""
    return _mel(audio, center=True)


class LogMelStream:
    """:func:`log_mel` of audio that arrives in pieces: :meth:`push` returns the frames whose
    windows are complete, :meth:`finish` the last ones; together, the frames of the whole audio
    (the start is reflected once 201 samples have come, the end once it is known)."""

    def __init__(self):
        self._buffer = np.zeros(0, np.float32)   # the padded audio from the next frame's start on
        self._started = False
        self._tail = np.zeros(0, np.float32)     # the last samples heard, to reflect at the end

    def _frames(self) -> np.ndarray:
        count = 0 if len(self._buffer) < _WINDOW else 1 + (len(self._buffer) - _WINDOW) // _HOP
        if count == 0:
            return np.zeros((0, N_MELS), np.float32)
        frames = _mel(self._buffer[:_WINDOW + (count - 1) * _HOP], center=False)
        self._buffer = self._buffer[count * _HOP:]
        return frames

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        self._tail = np.concatenate([self._tail, samples])[-(_WINDOW // 2 + 1):]
        self._buffer = np.concatenate([self._buffer, samples])
        if not self._started:
            if len(self._buffer) <= _WINDOW // 2:
                return np.zeros((0, N_MELS), np.float32)
            self._buffer = np.concatenate([self._buffer[1:_WINDOW // 2 + 1][::-1], self._buffer])
            self._started = True
        return self._frames()

    def export(self) -> dict:
        """What the stream holds, as JSON (:meth:`restore` reads it back)."""
        return {"buffer": self._buffer.tolist(), "started": self._started, "tail": self._tail.tolist()}

    @classmethod
    def restore(cls, exported: dict) -> LogMelStream:
        stream = cls()
        stream._buffer = np.asarray(exported["buffer"], dtype=np.float32)
        stream._started = bool(exported["started"])
        stream._tail = np.asarray(exported["tail"], dtype=np.float32)
        if not (np.isfinite(stream._buffer).all() and np.isfinite(stream._tail).all()):
            raise ValueError("the log-mel stream's samples are not finite")
        return stream

    def finish(self) -> np.ndarray:
        """The last frames (the end reflected); the stream is then spent."""
        if not self._started:
            raise ValueError(f"LogMelStream: expected more than {_WINDOW // 2} samples before finish(), got "
                             f"{len(self._buffer)}")
        self._buffer = np.concatenate([self._buffer, self._tail[-_WINDOW // 2 - 1:-1][::-1]])
        return self._frames()


def read_audio(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, str | None]:
    """A mono audio file (a path, or the file's bytes, called ``name`` in errors) as float32 at
    16 kHz, and a note when it was resampled. Files with more than one channel, no samples or a
    sample that is not finite are refused: which channel to keep is the caller's choice. So are
    rates below :data:`MIN_RATE` (no speech survives them, and resampling a file that claims 1 Hz
    would multiply its samples 16,000 times) and recordings longer than :data:`MAX_SECONDS`."""
    import soundfile
    what = name or (f"audio file {str(source)!r}" if not isinstance(source, bytes) else "audio")
    try:
        audio, rate = soundfile.read(io.BytesIO(source) if isinstance(source, bytes) else str(source),
                                     dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"{what} could not be read: {error}") from None
    if audio.shape[1] != 1:
        raise ValueError(f"{what} expected mono (1 channel), got {audio.shape[1]} channels: mix it "
                         "down or pick a channel first (e.g. sox in.wav -c 1 out.wav)")
    if audio.shape[0] == 0:
        raise ValueError(f"{what} expected some samples, got none")
    bad = np.flatnonzero(~np.isfinite(audio[:, 0]))
    if len(bad):
        raise ValueError(f"{what} expected finite samples, got {audio[bad[0], 0]} at sample {int(bad[0])} "
                         f"({len(bad)} such samples)")
    audio = audio[:, 0]
    if rate < MIN_RATE:
        raise ValueError(f"{what} expected a sample rate of at least {MIN_RATE} Hz, got {rate} Hz")
    if len(audio) > MAX_SECONDS * rate:
        raise ValueError(f"{what} expected at most {MAX_SECONDS} s of audio, got {len(audio) / rate:.0f} s: cut it "
                         "into shorter pieces (e.g. sox in.wav out.wav trim 0 600 : newfile : restart)")
    if rate == SAMPLE_RATE:
        return audio, None
    resampled = _librosa().resample(audio, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    return resampled, f"resampled from {rate} Hz to {SAMPLE_RATE} Hz"


def cache_dir() -> Path:
    """Where generated corpora are kept: ``$LSTMKIT_CACHE``, else ``~/.cache/lstmkit``."""
    return Path(os.environ.get("LSTMKIT_CACHE") or Path.home() / ".cache" / "lstmkit")


def _features(utterance: Utterance) -> np.ndarray:
    return log_mel(synthesize(utterance))


def load_digits(recipe: DigitsRecipe = DigitsRecipe(), *, cache: Path | None = None,
                workers: int | None = None) -> dict[str, tuple[list[np.ndarray], list[Utterance]]]:
    """The corpus of ``recipe``, per split: the log-mel features (frames, 40) of each utterance and
    its :class:`Utterance`. Synthesised once (in ``workers`` threads) and cached under
    :func:`cache_dir` by the recipe's key, with the recipe and the utterances in a JSON file beside."""
    folder = cache or cache_dir() / "digits"
    path = folder / f"digits-{recipe.key()}.npz"
    plan = recipe.utterances()
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        every = [u for split in ("train", "valid", "test") for u in plan[split]]
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            features = list(pool.map(_features, every))
        offsets = np.cumsum([0] + [len(f) for f in features])
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, frames=np.concatenate(features), offsets=offsets)
        os.replace(partial, path)
        (folder / f"digits-{recipe.key()}.json").write_text(json.dumps(
            {"recipe": asdict(recipe), "espeak_ng": espeak_version(), "voices": recipe.voices(),
             "utterances": {split: [asdict(u) for u in us] for split, us in plan.items()}}, indent=1))
    with np.load(path) as stored:
        frames, offsets = stored["frames"], stored["offsets"]
    out, k = {}, 0
    for split in ("train", "valid", "test"):
        n = len(plan[split])
        out[split] = ([frames[offsets[i]:offsets[i + 1]] for i in range(k, k + n)], plan[split])
        k += n
    return out
