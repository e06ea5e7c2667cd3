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


class NonFiniteEmbeddingError(FloatingPointError):
    """Finite audio gave NaN or infinite embeddings: the model's weights overflow float32 (a damaged checkpoint can
    load, its values finite but some absurdly large: one flipped exponent bit makes a weight 1e38)."""


def _bad_sounds(finite_per_sound) -> str:
    """The sounds whose flag is False, listed (at most ten), or "" when there are none."""
    bad = np.flatnonzero(~np.asarray(finite_per_sound, dtype=bool))
    return ", ".join(str(i) for i in bad[:10]) + (" ..." if bad.size > 10 else "")


def check_finite(finite_per_sound: np.ndarray) -> None:
    """finite_per_sound[i] is False when sound i holds a NaN or an infinity. numpy computes it from float64 row sums,
    one buffered pass (NaN and inf propagate through a sum, and float32 rows cannot overflow float64); torch from
    each row's max and min, where a float64 sum would copy the input; TF from a bool mask."""
    if listed := _bad_sounds(finite_per_sound):
        raise ValueError(f"audio contains NaN or infinity in sound(s) {listed}; expected finite samples")


def check_finite_embeddings(finite_per_sound: np.ndarray, model) -> None:
    """The output contract: finite audio (checked on the way in) gives finite embeddings. finite_per_sound as in
    check_finite, from the embeddings; a NaN is never returned in silence."""
    if listed := _bad_sounds(finite_per_sound):
        source = getattr(model, "checkpoint_path", None) or "set in this process"
        raise NonFiniteEmbeddingError(
            f"the embeddings of sound(s) {listed} hold NaN or infinity although the audio is finite: the model's "
            f"weights ({source}) overflow float32; expected a checkpoint whose weights are of trained sizes")


def check_numpy_audio(audio) -> np.ndarray:
    """Validate a numpy-like array and return it as contiguous float32."""
    array = np.asarray(audio)
    check_audio_layout(array.shape, array.dtype.name, array.dtype.kind)
    array = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(np.isfinite(array.sum(axis=1, dtype=np.float64)))
    return array


PAIRWISE_METRICS = ("l1", "l2")


def check_pairwise(shape1: tuple, shape2: tuple, metric: str) -> int:
    """Validate pairwise_distance inputs; return how many rows of emb1 to take per block (bounded memory)."""
    if metric not in PAIRWISE_METRICS:
        raise ValueError(f"metric must be one of {PAIRWISE_METRICS}, got {metric!r}")
    if len(shape1) != 3 or len(shape2) != 3:
        raise ValueError(f"embeddings must be 3-D (n, n_frames, D), got shapes {tuple(shape1)} and {tuple(shape2)}")
    if tuple(shape1[1:]) != tuple(shape2[1:]):
        raise ValueError(f"embeddings must agree on (n_frames, D), got {tuple(shape1[1:])} and {tuple(shape2[1:])}")
    per_row = max(1, shape2[0] * shape1[1] * shape1[2])
    return max(1, (1 << 24) // per_row)  # about 64 MiB of float32 differences per block
