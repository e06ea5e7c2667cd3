"""Locating and reading the Free Spoken Digit Dataset (FSDD) that sits in ../shared beside a checkout.

FSDD is never copied into the repository; code that uses it skips cleanly when it is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np


def fsdd_dir() -> Path | None:
    """$HEAR_DUAL_FSDD, else ../shared/data/fsdd next to the repository or the working directory."""
    candidates = [os.environ.get("HEAR_DUAL_FSDD")]
    here = Path(__file__).resolve().parent.parent
    candidates += [here.parent / "shared" / "data" / "fsdd", Path.cwd().parent / "shared" / "data" / "fsdd"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir() and any(Path(candidate).glob("*.wav")):
            return Path(candidate)
    return None


RESAMPLE_QUALITY = "HQ"  # soxr's high-quality preset
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")  # {digit}_{speaker}_{index}.wav


def read_audio(path, sample_rate: int) -> tuple[np.ndarray, int, int]:
    """(mono float32 audio at sample_rate, the file's sample rate, its number of frames).

    soundfile reads float64, the channels are averaged, soxr resamples at RESAMPLE_QUALITY when the rates differ.
    """
    import soundfile as sf
    import soxr

    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    frames = audio.shape[0]
    audio = audio.mean(axis=1)
    if rate != sample_rate and frames:
        audio = soxr.resample(audio, rate, sample_rate, quality=RESAMPLE_QUALITY)
    return audio.astype(np.float32), int(rate), int(frames)


def read_clip(path, sample_rate: int) -> np.ndarray:
    """Mono float32 at sample_rate (soxr high quality resampling)."""
    return read_audio(path, sample_rate)[0]


def fsdd_batch(sample_rate: int, n_clips: int, seed: int = 0) -> np.ndarray | None:
    """n_clips FSDD recordings (a seeded choice), cropped or zero-padded to the longest of them."""
    root = fsdd_dir()
    if root is None:
        return None
    files = sorted(root.glob("*.wav"))
    picks = np.random.default_rng(seed).choice(len(files), size=n_clips, replace=False)
    clips = [read_clip(files[i], sample_rate) for i in picks]
    length = max(len(c) for c in clips)
    return np.stack([np.pad(c, (0, length - len(c))) for c in clips])


# libsndfile's formats and the file extensions they go by (RAW is left out: it cannot be read without
# being told its layout). Only the formats soundfile.available_formats() lists are used.
_FORMAT_EXTENSIONS = {
    "AIFF": ("aiff", "aif", "aifc"), "AU": ("au", "snd"), "AVR": ("avr",), "CAF": ("caf",), "FLAC": ("flac",),
    "HTK": ("htk",), "SVX": ("iff", "svx"), "MAT4": ("mat",), "MAT5": ("mat",), "MPC2K": ("mpc2k",),
    "MP3": ("mp3",), "OGG": ("ogg", "oga", "opus"), "PAF": ("paf",), "PVF": ("pvf",), "RF64": ("rf64",),
    "SD2": ("sd2",), "SDS": ("sds",), "IRCAM": ("sf", "ircam"), "VOC": ("voc",), "W64": ("w64",),
    "WAV": ("wav", "wave"), "NIST": ("nist", "sph"), "WAVEX": ("wav",), "WVE": ("wve",), "XI": ("xi",),
}


def audio_extensions() -> frozenset[str]:
    """Lower-case extensions (no dot) of the formats this soundfile build reads."""
    import soundfile as sf

    available = sf.available_formats()
    return frozenset(ext for fmt, exts in _FORMAT_EXTENSIONS.items() if fmt in available for ext in exts)
