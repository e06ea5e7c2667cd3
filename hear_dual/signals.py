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
