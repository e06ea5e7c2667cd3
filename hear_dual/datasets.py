"""Locating and reading the Free Spoken Digit Dataset (FSDD) that sits in ../shared beside a checkout.

FSDD is never copied into the repository; code that uses it skips cleanly when it is absent.
"""

from __future__ import annotations

import os
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


def read_clip(path, sample_rate: int) -> np.ndarray:
    """Mono float32 at sample_rate (soxr high quality resampling)."""
    import soundfile as sf
    import soxr

    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
    return audio.astype(np.float32)


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
