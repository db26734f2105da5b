"""Source signals: recorded speech corpora and espeak-ng speech, cached.

Recorded speech (real, single channel; see offline-audio.md) is read from the Debian
packages when they are installed: ``pocketsphinx-testdata`` (16 kHz read speech),
``asterisk-core-sounds-en-wav`` (one female speaker, 8 kHz, resampled) and ``alsa-utils``
(48 kHz spoken words, resampled). Missing corpora give one warning and are skipped.

Synthetic speech comes from ``espeak-ng`` with a voice, variant, rate, pitch and text drawn
per pool index from a fixed seed, so pool item ``i`` is always the same utterance; items are
generated on first use and cached as WAV under ``$SST_CACHE_DIR`` (default
``~/.cache/sst_ros/espeak``). When neither source is available the pool falls back to a
speech-like synthetic signal (harmonic, syllable-modulated) with a warning, never an error.

All signals are float32 mono at the pool's sample rate, normalised to unit RMS over their
active part.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from sst_ros.audio.resample import resample

__all__ = ["SpeechPool", "cache_dir", "get_speech_pool"]

log = logging.getLogger(__name__)

REAL_CORPORA: dict[str, str] = {
    "pocketsphinx": "/usr/share/pocketsphinx/test/data/**/*.wav",
    "asterisk_allison": "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav",
    "alsa": "/usr/share/sounds/alsa/[FRS]*_*.wav",
}
# Relative share of each corpus among recorded utterances (alsa: 9 short words only).
CORPUS_WEIGHTS: dict[str, float] = {"pocketsphinx": 0.45, "asterisk_allison": 0.4, "alsa": 0.15}
RECORDED_NOISE_GLOB = "/usr/share/sounds/alsa/Noise.wav"

_ESPEAK_VOICES = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
    "en-gb",
    "en-us",
    "en",
    "de",
    "fr",
    "es",
    "it",
    "nl",
    "pt",
    "sv",
    "pl",
)
_ESPEAK_VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "croak",
    "klatt",
    "klatt2",
    "klatt3",
    "Andy",
    "Annie",
    "boris",
    "david",
    "ed",
    "iven",
    "john",
    "linda",
    "max",
    "Mike",
    "paul",
    "quincy",
    "robert",
    "steph",
    "travis",
    "victor",
    "grandma",
    "grandpa",
    "belinda",
    "aunty",
)
_TEXTS = (
    "Hello robot, please follow me to the kitchen.",
    "Can you bring the red cup from the table over there?",
    "Turn left at the end of the corridor and wait for me.",
    "I think the meeting starts at half past three this afternoon.",
    "Where did you put the keys I left on the shelf yesterday?",
    "The weather is supposed to be much better tomorrow morning.",
    "Stop right there, and look at me when I am talking.",
    "Could you please open the door for the visitors?",
    "Seven, four, nine, two. That is the code for the storage room.",
    "We should probably order some more coffee for the office.",
    "Excuse me, do you know where the elevator is?",
    "It was a dark and stormy night, and the wind howled through the trees.",
    "Please charge your battery before the demonstration starts.",
    "My favourite colour is blue, but green is nice as well.",
    "Let us go outside and check whether the package has arrived.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Put the books back on the second shelf from the top.",
    "How many people are coming to dinner on Saturday?",
    "Yes. No. Maybe later. I am not sure yet.",
    "Follow the blue line on the floor until you reach the lab.",
    "Good morning everyone, welcome to the laboratory tour.",
    "Can you hear me now? I am standing behind you.",
    "Go to the living room and tell them dinner is ready.",
    "I need help carrying these boxes up the stairs.",
    "Remember to water the plants on the window sill.",
    "This is a test of the sound source tracking system.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
    "The children are playing in the garden behind the house.",
    "Please come here, I would like to show you something.",
    "Thank you very much, that will be all for today.",
)
_TRANSCRIPT_FILES = (
    "/usr/share/pocketsphinx/test/data/librivox/transcription",
    "/usr/share/pocketsphinx/test/data/cards/cards.transcription",
)


def cache_dir() -> Path:
    """Cache folder of generated source signals (``$SST_CACHE_DIR`` or ``~/.cache/sst_ros``)."""
    root = os.environ.get("SST_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "sst_ros")
    return Path(root)


def _resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """(n,) -> (n',) float32 at ``fs_out`` Hz: the package's resampler, in the input's precision."""
    return resample(x, fs_in, fs_out, in_input_precision=True)[:, 0]


def _normalise(x: np.ndarray) -> np.ndarray | None:
    """Unit RMS over the samples within 40 dB of the peak; None for silent or broken input."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return None
    x = x - x.mean()
    peak = np.max(np.abs(x))
    if peak <= 1e-6:
        return None
    loud = np.abs(x) > peak * 0.01
    rms = np.sqrt(np.mean(x[loud] ** 2)) if loud.any() else peak
    return (x / max(rms, 1e-9)).astype(np.float32)


def _texts() -> list[str]:
    texts = list(_TEXTS)
    for path in _TRANSCRIPT_FILES:
        try:
            for line in Path(path).read_text(errors="ignore").splitlines():
                line = line.replace("<s>", "").replace("</s>", "")
                line = line.split("(")[0].strip()
                if len(line.split()) >= 3:
                    texts.append(line)
        except OSError:
            continue
    return texts


class SpeechPool:
    """Mono source signals at ``fs`` Hz: recorded utterances plus an espeak-ng pool.

    Args:
        fs: sample rate in Hz.
        espeak_pool_size: number of distinct espeak-ng utterances.
        espeak_rate_wpm: (low, high) speaking rate in words per minute.
        espeak_pitch: (low, high) espeak-ng pitch (0..99).
    """

    def __init__(
        self,
        fs: int,
        espeak_pool_size: int = 400,
        espeak_rate_wpm: tuple[float, float] = (120.0, 220.0),
        espeak_pitch: tuple[float, float] = (20.0, 80.0),
    ) -> None:
        self.fs = int(fs)
        self.espeak_pool_size = int(espeak_pool_size)
        self.espeak_rate_wpm: tuple[float, float] = (espeak_rate_wpm[0], espeak_rate_wpm[1])
        self.espeak_pitch: tuple[float, float] = (espeak_pitch[0], espeak_pitch[1])
        self.real: list[np.ndarray] = []
        self.real_names: list[str] = []
        self._by_corpus: dict[str, list[int]] = {}
        self._espeak_cache: dict[int, np.ndarray | None] = {}
        self._espeak = shutil.which("espeak-ng")
        self._texts = _texts()
        self._load_real()
        if self._espeak is None:
            log.warning("espeak-ng not found: synthetic speech disabled (install the Debian package espeak-ng)")
        if not self.real and self._espeak is None:
            log.warning(
                "no speech source available (no recorded corpora, no espeak-ng): using a speech-like synthetic "
                "signal; install pocketsphinx-testdata, asterisk-core-sounds-en-wav or espeak-ng"
            )
        self._recorded_noise: np.ndarray | None | bool = False

    # -- recorded speech -------------------------------------------------------------------
    def _load_real(self) -> None:
        for corpus, pattern in REAL_CORPORA.items():
            files = sorted(glob.glob(pattern, recursive=True))
            if not files:
                log.warning("speech corpus '%s' not found (%s); skipping it", corpus, pattern)
                continue
            for f in files:
                try:
                    x, fs = sf.read(f, dtype="float32", always_2d=True)
                except (RuntimeError, sf.LibsndfileError) as err:
                    log.warning("cannot read %s (%s); skipping it", f, err)
                    continue
                x = _normalise(_resample(x[:, 0], fs, self.fs))
                if x is not None and x.size > self.fs // 4:
                    self._by_corpus.setdefault(corpus, []).append(len(self.real))
                    self.real.append(x)
                    self.real_names.append(f"{corpus}:{Path(f).name}")

    @property
    def has_real(self) -> bool:
        """True when at least one recorded utterance is loaded."""
        return bool(self.real)

    @property
    def has_espeak(self) -> bool:
        """True when espeak-ng is available."""
        return self._espeak is not None

    # -- espeak-ng -------------------------------------------------------------------------
    def espeak_params(self, index: int) -> dict[str, object]:
        """The voice, rate (wpm), pitch and text of espeak pool item ``index`` (deterministic)."""
        rng = np.random.default_rng([0x5EED, int(index)])
        voice = _ESPEAK_VOICES[rng.integers(len(_ESPEAK_VOICES))]
        variant = _ESPEAK_VARIANTS[rng.integers(len(_ESPEAK_VARIANTS))]
        rate = int(round(rng.uniform(*self.espeak_rate_wpm)))
        pitch = int(round(rng.uniform(*self.espeak_pitch)))
        n_sent = int(rng.integers(1, 3))
        text = " ".join(self._texts[rng.integers(len(self._texts))] for _ in range(n_sent))
        return {"voice": voice + (f"+{variant}" if variant else ""), "rate": rate, "pitch": pitch, "text": text}

    def espeak(self, index: int) -> np.ndarray | None:
        """Espeak pool item ``index`` as float32 at ``fs`` (generated once, then cached on disk)."""
        index = int(index) % self.espeak_pool_size
        if index in self._espeak_cache:
            return self._espeak_cache[index]
        p = self.espeak_params(index)
        key = hashlib.sha1(repr(sorted(p.items())).encode()).hexdigest()[:16]
        path = cache_dir() / "espeak" / f"{key}.wav"
        x: np.ndarray | None = None
        if path.is_file():
            try:
                data, fs = sf.read(str(path), dtype="float32")
                x = _resample(data, fs, self.fs)
            except (RuntimeError, sf.LibsndfileError):
                x = None
        if x is None and self._espeak is not None:
            x = self._run_espeak(p, path)
        x = _normalise(x) if x is not None else None
        self._espeak_cache[index] = x
        return x

    def _run_espeak(self, p: dict[str, object], path: Path) -> np.ndarray | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".wav", dir=str(path.parent))
        os.close(fd)
        cmd = [str(self._espeak), "-v", str(p["voice"]), "-s", str(p["rate"]), "-p", str(p["pitch"]), "-w", tmp]
        try:
            subprocess.run([*cmd, str(p["text"])], check=True, capture_output=True, timeout=30)
            data, fs = sf.read(tmp, dtype="float32")
            if data.ndim > 1:
                data = data[:, 0]
            os.replace(tmp, path)  # atomic: parallel workers may race on the same item
            return _resample(data, fs, self.fs)
        except (subprocess.SubprocessError, OSError, RuntimeError, sf.LibsndfileError) as err:
            log.warning("espeak-ng failed for voice %s (%s); skipping this utterance", p["voice"], err)
            return None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # -- drawing ---------------------------------------------------------------------------
    def utterance(self, rng: np.random.Generator, real_prob: float) -> tuple[np.ndarray, str]:
        """Draw one utterance: (float32 mono at ``fs``, identifier)."""
        use_real = self.has_real and (not self.has_espeak or rng.random() < real_prob)
        if use_real:
            # Corpus first (CORPUS_WEIGHTS), then an utterance: one large single-speaker corpus
            # (asterisk, 8 kHz) must not crowd out the others.
            corpora = sorted(self._by_corpus)
            w = np.array([CORPUS_WEIGHTS.get(c, 0.2) for c in corpora])
            members = self._by_corpus[corpora[int(rng.choice(len(corpora), p=w / w.sum()))]]
            i = members[int(rng.integers(len(members)))]
            return self.real[i], self.real_names[i]
        if self.has_espeak:
            for _ in range(5):
                i = int(rng.integers(self.espeak_pool_size))
                x = self.espeak(i)
                if x is not None:
                    return x, f"espeak:{i}"
            if self.has_real:
                i = int(rng.integers(len(self.real)))
                return self.real[i], self.real_names[i]
        return self._synthetic(rng), "synthetic"

    def _synthetic(self, rng: np.random.Generator) -> np.ndarray:
        """Speech-like fallback: a harmonic tone with a wandering f0, syllable-rate on/off."""
        n = int(rng.uniform(1.0, 3.0) * self.fs)
        t = np.arange(n) / self.fs
        f0 = rng.uniform(90, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / self.fs
        x = sum(np.sin(k * phase) / k for k in range(1, 20))
        env = (np.sin(2 * np.pi * rng.uniform(3, 6) * t) > -0.3).astype(np.float32)
        y = _normalise(x * env + 0.05 * rng.standard_normal(n))
        return y if y is not None else np.zeros(n, np.float32)

    def recorded_noise(self) -> np.ndarray | None:
        """The recorded noise file (alsa Noise.wav) at ``fs``, or None if not installed."""
        if self._recorded_noise is False:
            files = sorted(glob.glob(RECORDED_NOISE_GLOB))
            self._recorded_noise = None
            if files:
                try:
                    x, fs = sf.read(files[0], dtype="float32", always_2d=True)
                    self._recorded_noise = _normalise(_resample(x[:, 0], fs, self.fs))
                except (RuntimeError, sf.LibsndfileError):
                    self._recorded_noise = None
        return self._recorded_noise  # type: ignore[return-value]


@lru_cache(maxsize=4)
def get_speech_pool(
    fs: int, espeak_pool_size: int, espeak_rate_wpm: tuple[float, float], espeak_pitch: tuple[float, float]
) -> SpeechPool:
    """Process-wide cached :class:`SpeechPool` (recorded corpora load once per process)."""
    return SpeechPool(fs, espeak_pool_size, espeak_rate_wpm, espeak_pitch)
