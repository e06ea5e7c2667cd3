"""The input contract, checked once here for every backend (README, "Input contract")."""

from __future__ import annotations

import numpy as np

INT16_HINT = "scale integer PCM to [-1, 1] first, e.g. int16 audio / 32768"


def check_audio_layout(shape: tuple, dtype_name: str, dtype_kind: str) -> None:
    """dtype_kind is numpy's kind letter: 'f' float, 'i'/'u' integer, 'b' bool, 'c' complex."""
    if len(shape) != 2:
        raise ValueError(f"audio must be 2-D (n_sounds, n_samples), got {len(shape)}-D with shape {tuple(shape)}")
    if dtype_kind != "f" or dtype_name not in ("float32", "float64"):
        hint = f"; {INT16_HINT}" if dtype_kind in "iub" else ""
        raise TypeError(f"audio must be float32 or float64, got {dtype_name}{hint}")
    if shape[1] == 0:
        raise ValueError(f"audio has zero samples (shape {tuple(shape)}); at least one sample per sound is needed")


def check_finite(finite_per_sound: np.ndarray) -> None:
    bad = np.flatnonzero(~np.asarray(finite_per_sound, dtype=bool))
    if bad.size:
        listed = ", ".join(str(i) for i in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise ValueError(f"audio contains NaN or infinity in sound(s) {listed}; expected finite samples")


def check_numpy_audio(audio) -> np.ndarray:
    """Validate a numpy-like array and return it as contiguous float32."""
    array = np.asarray(audio)
    check_audio_layout(array.shape, array.dtype.name, array.dtype.kind)
    array = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(np.isfinite(array).all(axis=1))
    return array
