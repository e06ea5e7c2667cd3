"""Deterministic test signals: the inputs that find parity bugs (silence, tones near Nyquist, ...)."""

from __future__ import annotations

import numpy as np


def _time(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    x = np.fft.irfft(spectrum, n)
    return x / (np.abs(x).max() + 1e-12)


def make_signal(kind: str, n: int, sr: int, seed: int = 0) -> np.ndarray:
    """One float32 signal of n samples in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = _time(n, sr)
    nyquist = sr / 2
    if kind == "silence":
        x = np.zeros(n)
    elif kind == "near_silence":
        x = 1e-5 * rng.standard_normal(n)
    elif kind == "white_noise":
        x = rng.uniform(-1, 1, n)
    elif kind == "pink_noise":
        x = 0.9 * pink_noise(n, rng)
    elif kind == "sine_50hz":
        x = 0.8 * np.sin(2 * np.pi * 50.0 * t)
    elif kind == "sine_near_nyquist":
        x = 0.8 * np.sin(2 * np.pi * (nyquist - 37.0) * t)
    elif kind == "chirp":
        f0, f1, duration = 40.0, nyquist * 0.95, max(t[-1], 1.0 / sr) if n else 1.0
        x = 0.7 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * duration)))
    elif kind == "impulse_train":
        x = np.zeros(n)
        x[:: max(1, sr // 7)] = 1.0
    elif kind == "square":
        x = np.sign(np.sin(2 * np.pi * 220.0 * t + 0.1))
    elif kind == "dc_offset":
        x = 0.5 + 0.05 * rng.standard_normal(n)
    elif kind == "tone_mix":
        f = rng.uniform(80, nyquist * 0.8, 4)
        x = sum(np.sin(2 * np.pi * fi * t + rng.uniform(0, 6)) for fi in f) * 0.2
        x *= 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(0.5, 4) * t))
    else:
        raise ValueError(f"unknown signal kind {kind!r}; expected one of {SIGNAL_KINDS}")
    return np.clip(x, -1.0, 1.0).astype(np.float32)


SIGNAL_KINDS = ("silence", "near_silence", "white_noise", "pink_noise", "sine_50hz", "sine_near_nyquist",
                "chirp", "impulse_train", "square", "dc_offset", "tone_mix")


def signal_batch(kind: str, n_sounds: int, n: int, sr: int, seed: int = 0) -> np.ndarray:
    return np.stack([make_signal(kind, n, sr, seed + i) for i in range(n_sounds)]) if n_sounds else \
        np.zeros((0, n), np.float32)


MUSIC_KINDS = ("chords", "drums")


def music_clip(kind: str, n: int, sr: int, seed: int = 0) -> np.ndarray:
    """A few seconds of generated music, float32 in [-1, 1]: "chords" (triads of harmonic tones with attack and
    decay, a new chord every 0.5 s) or "drums" (kick, snare and hi-hat at 120 bpm). For music models (musicnn)."""
    rng = np.random.default_rng(seed)
    t = _time(n, sr)
    x = np.zeros(n)
    if kind == "chords":
        roots = 110.0 * 2 ** (rng.integers(0, 12, size=-(-n // (sr // 2))) / 12)
        for i, root in enumerate(roots):
            start = i * (sr // 2)
            local = t[start : start + sr] - t[start]                   # each chord rings on for 1 s
            envelope = np.minimum(local / 0.01, 1.0) * np.exp(-3.0 * local)
            for ratio in (1.0, 1.25, 1.5):                             # a major triad, five harmonics each
                for h in range(1, 6):
                    x[start : start + local.size] += 0.08 / h * envelope * np.sin(2 * np.pi * root * ratio * h * local)
    elif kind == "drums":
        beat = sr // 2
        for start in range(0, n, beat // 2):
            local = t[start : start + beat] - t[start]
            hit = (start // (beat // 2)) % 4
            if hit in (0, 2):          # kick: a falling sine
                pitch = 50 + 80 * np.exp(-20 * local)
                x[start : start + local.size] += 0.9 * np.exp(-12 * local) * np.sin(2 * np.pi * pitch * local)
            if hit in (1, 3):          # snare: a noise burst with a body
                x[start : start + local.size] += np.exp(-18 * local) * (0.5 * rng.uniform(-1, 1, local.size)
                                                                        + 0.3 * np.sin(2 * np.pi * 190 * local))
            noise = rng.uniform(-1, 1, local.size)                      # hi-hat on every eighth: bright noise
            x[start : start + local.size] += 0.2 * np.exp(-60 * local) * np.diff(noise, prepend=0.0)
    else:
        raise ValueError(f"unknown music kind {kind!r}; expected one of {MUSIC_KINDS}")
    return np.clip(x, -1.0, 1.0).astype(np.float32)
