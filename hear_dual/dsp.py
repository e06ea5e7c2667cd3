"""The frontend's fixed numbers, in numpy float64: the window, the windowed DFT matrix, the mel scales and filterbank.

The lowest module of the package: it imports nothing of hear-dual, so the spec loader (which builds a filterbank to
validate a spec) and the constants and index math of hear_dual.audio both stand on it. SPEC section 3 states every
formula here; hear_dual.audio.frontend_constants evaluates them for a spec, and checkpoints store the results.
"""

from __future__ import annotations

import numpy as np

FLOAT16_MAX = 65504.0     # the largest finite float16: the float16 step of a mel_patches frontend saturates here


def hann_periodic(length: int) -> np.ndarray:
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def windowed_dft_matrix(win_length: int, n_fft: int) -> np.ndarray:
    """(win_length, 2 * n_bins): columns [0, n_bins) give Re, [n_bins, 2 n_bins) give Im of the DFT."""
    n = np.arange(win_length)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    # Reduce n*k modulo n_fft in integers first: the angle stays exact for long windows.
    angle = 2.0 * np.pi * ((n * k) % n_fft) / n_fft
    window = hann_periodic(win_length)[:, None]
    return np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz at 200/3 Hz per mel, logarithmic above,
# written as librosa writes it so that the float64 values agree to the last bits.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz, scale: str = "htk"):
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def mel_to_hz(mel, scale: str = "htk"):
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, _F_SP * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                   norm: str = "slaney", scale: str = "htk") -> np.ndarray:
    """(n_bins, n_mels) triangles linear in Hz, corners equally spaced on the mel scale (HTK's or Slaney's).

    Raises ValueError naming the bands that contain no DFT bin."""
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale), n_mels + 2), scale)
    lower, centre, upper = corners[:-2], corners[1:-1], corners[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    empty = np.flatnonzero(weights.sum(axis=0) == 0)
    if empty.size:
        raise ValueError(f"mel bands {empty.tolist()} contain no DFT bin: use fewer mels, a larger n_fft "
                         "or a higher f_min")
    return weights
