"""logmel-stats: a no-learning reference, as a HEAR 2021 module (`hear_dual.baselines`).

    hear-dual evaluate hear_dual.baselines fsdd --task fsdd-digit        (or the reference name logmel-stats)

The hear-dual-base frontend and nothing else: the same window, DFT, mel filterbank and log offset
(hear_dual.audio.frontend_constants of the hear-dual-base spec, float64), no encoder, no parameters.

    timestamp embeddings   the 64 log-mel bands of each frame, float32 (n_sounds, T, 64); frame k is centred
                           on sample k * 160 (10 ms hop at 16 kHz), the clip zero-padded by half a window on
                           each side, T = (n_samples - 1) // 160 + 1 as everywhere in hear-dual
    scene embeddings       concat(mean, std) over time of those frames (population std), float32 (n_sounds, 128)

All arithmetic is numpy. The model object carries no weights; it is a torch.nn.Module (with no parameters)
when torch is installed, only so that heareval and hear-validator, which accept torch or TF models, accept
it. Outputs follow the input: torch tensors in, torch tensors out; anything else in, numpy out.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hear_dual.audio import frontend_constants
from hear_dual.inputs import check_audio_layout, check_finite
from hear_dual.spec import Spec

try:
    import torch

    _ModelBase = torch.nn.Module
except ImportError:  # numpy-only install: still usable through hear-dual evaluate
    torch = None
    _ModelBase = object

__all__ = ["LogMelStatsModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "FRONTEND_SPEC"]

FRONTEND_SPEC = "hear-dual-base"
FRAMES_PER_BLOCK = 4096            # frames computed at once per sound: bounds memory for long audio


@lru_cache(maxsize=1)
def _frontend():
    spec = Spec.builtin(FRONTEND_SPEC)
    constants = frontend_constants(spec)
    return spec, constants["frontend.dft"].astype(np.float64), constants["frontend.mel"].astype(np.float64)


class LogMelStatsModel(_ModelBase):
    """Metadata only; the HEAR API functions of this module do the work."""

    def __init__(self):
        super().__init__()
        spec, _, mel = _frontend()
        self.name = "logmel-stats"
        self.sample_rate = spec.sample_rate
        self.hop_length = spec.frontend["hop_length"]
        self.win_length = spec.frontend["win_length"]
        self.log_offset = spec.frontend["log_offset"]
        self.n_mels = int(mel.shape[1])
        self.timestamp_embedding_size = self.n_mels
        self.scene_embedding_size = 2 * self.n_mels

    def forward(self, audio):  # pragma: no cover - torch.nn.Module wants one; the HEAR functions are the API
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "") -> LogMelStatsModel:
    if model_file_path not in (None, ""):
        raise ValueError(f"logmel-stats has no weights; got model_file_path={model_file_path!r}")
    return LogMelStatsModel()


def _as_numpy(audio) -> tuple[np.ndarray, bool]:
    is_torch = torch is not None and isinstance(audio, torch.Tensor)
    if is_torch:
        audio = audio.detach().cpu().numpy()
    array = np.asarray(audio)
    check_audio_layout(array.shape, array.dtype.name, array.dtype.kind)
    array = array.astype(np.float64)
    check_finite(np.isfinite(array.sum(axis=1)))
    return array, is_torch


def _log_mel(sound: np.ndarray, model: LogMelStatsModel) -> np.ndarray:
    """(T, n_mels) float64: frame k covers padded samples [k hop, k hop + win), centred on clip sample k hop."""
    _, dft, mel = _frontend()
    hop, win = model.hop_length, model.win_length
    n_frames = (len(sound) - 1) // hop + 1
    padded = np.pad(sound, (win // 2, hop * (n_frames - 1) + win - win // 2 - len(sound)))
    n_bins = dft.shape[1] // 2
    out = np.empty((n_frames, model.n_mels))
    for start in range(0, n_frames, FRAMES_PER_BLOCK):
        stop = min(start + FRAMES_PER_BLOCK, n_frames)
        index = (np.arange(start, stop) * hop)[:, None] + np.arange(win)[None, :]
        spectrum = padded[index] @ dft
        power = spectrum[:, :n_bins] ** 2 + spectrum[:, n_bins:] ** 2
        out[start:stop] = np.log(power @ mel + model.log_offset)
    return out


def _timestamps_ms(n_samples: int, model: LogMelStatsModel) -> np.ndarray:
    k = np.arange((n_samples - 1) // model.hop_length + 1, dtype=np.float64)
    return (k * model.hop_length * 1000.0 / model.sample_rate).astype(np.float32)


def _out(array: np.ndarray, as_torch: bool):
    array = np.ascontiguousarray(array, dtype=np.float32)
    return torch.from_numpy(array) if as_torch else array


def get_timestamp_embeddings(audio, model: LogMelStatsModel):
    """audio (n_sounds, n_samples) -> log-mel frames (n_sounds, T, 64) float32, timestamps (n_sounds, T) in ms."""
    audio, as_torch = _as_numpy(audio)
    n_sounds, n_samples = audio.shape
    timestamps = _timestamps_ms(n_samples, model)
    embeddings = np.zeros((n_sounds, len(timestamps), model.timestamp_embedding_size), np.float32)
    for i, sound in enumerate(audio):
        embeddings[i] = _log_mel(sound, model)
    return _out(embeddings, as_torch), _out(np.tile(timestamps, (n_sounds, 1)), as_torch)


def get_scene_embeddings(audio, model: LogMelStatsModel):
    """audio (n_sounds, n_samples) -> concat(mean, std) over time of the log-mel frames, (n_sounds, 128) float32."""
    audio, as_torch = _as_numpy(audio)
    scene = np.zeros((len(audio), model.scene_embedding_size), np.float32)
    for i, sound in enumerate(audio):
        frames = _log_mel(sound, model)
        scene[i] = np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
    return _out(scene, as_torch)
