"""A small generated sound-event dataset: clips of quiet pink noise with beeps, buzzes and hisses at known times.

Used by the tests and the heareval cross-check to build a timestamp task with `hear-dual make-task --events`.
Every clip holds 1 to 3 events of 0.3 to 0.8 s (different labels may overlap), with 10 ms raised-cosine
ramps; the events CSV has columns file,label,onset,offset in seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hear_dual.signals import pink_noise

LABELS = ("beep", "buzz", "hiss")


def _sound(label: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    if label == "beep":
        x = np.sin(2 * np.pi * rng.uniform(900, 1100) * t)
    elif label == "buzz":
        x = np.sign(np.sin(2 * np.pi * rng.uniform(140, 160) * t)) * 0.6
    else:
        x = rng.uniform(-1, 1, n) * 0.5
    ramp = min(n // 2, int(0.01 * sr))
    envelope = np.ones(n)
    envelope[:ramp] = envelope[n - ramp:][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    return 0.3 * x * envelope


def write_event_clips(folder, n_clips: int, seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> Path:
    """Write n_clips wavs to folder and folder/events.csv; return the CSV's path."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    rows = []
    for k in range(n_clips):
        audio = 0.01 * pink_noise(n, rng)
        for label in rng.choice(LABELS, size=rng.integers(1, 4), replace=False):
            length = rng.uniform(0.3, min(0.8, seconds / 2))
            onset = rng.uniform(0, seconds - length)
            start = int(round(onset * sample_rate))
            stop = min(n, start + int(round(length * sample_rate)))
            audio[start:stop] += _sound(str(label), stop - start, sample_rate, rng)
            rows.append((f"clip{k:03d}.wav", str(label), round(start / sample_rate, 4), round(stop / sample_rate, 4)))
        sf.write(folder / f"clip{k:03d}.wav", audio.astype(np.float32), sample_rate, subtype="PCM_16")
    path = folder / "events.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "onset", "offset"])
        writer.writerows(sorted(rows))
    return path
