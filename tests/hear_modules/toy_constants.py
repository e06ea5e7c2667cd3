"""Numpy constants shared by the toy HEAR modules (they stand in for an outside participant's code)."""

import numpy as np

SAMPLE_RATE = 16000
FRAME = 400          # 25 ms window
HOP = 320            # 20 ms hop
N_BANDS = 8
LOG_OFFSET = 1e-6


def band_basis(sample_rate: int = SAMPLE_RATE, seed: int = 1234) -> np.ndarray:
    """(FRAME, 2 * N_BANDS) float64: Hann-windowed cos | sin at 8 seeded, log-spaced band centres."""
    rng = np.random.default_rng(seed)
    centres = np.geomspace(100.0, 0.42 * sample_rate, N_BANDS) * rng.uniform(0.97, 1.03, N_BANDS)
    t = np.arange(FRAME) / sample_rate
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)
    phase = 2 * np.pi * centres[None, :] * t[:, None]
    return np.concatenate([np.cos(phase), np.sin(phase)], axis=1) * window[:, None]


def n_frames(n_samples: int) -> int:
    """Frames centred on samples 0, HOP, 2 HOP, ... (audio padded by FRAME // 2 on each side)."""
    return 1 + n_samples // HOP


def timestamps_ms(n_samples: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return (np.arange(n_frames(n_samples)) * HOP * 1000.0 / sample_rate).astype(np.float32)
