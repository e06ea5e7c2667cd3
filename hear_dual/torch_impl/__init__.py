"""The HEAR 2021 API in PyTorch: load_model, get_timestamp_embeddings, get_scene_embeddings."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from hear_dual.audio import auto_chunk_timestamps, chunk_plan, frame_groups, num_timestamps, timestamps_ms
from hear_dual.inputs import check_audio_layout, check_finite, check_pairwise
from hear_dual.torch_impl.model import HearDualModel, load_model

__all__ = ["HearDualModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


def _as_audio_tensor(audio) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor):
        array = np.asarray(audio)
        check_audio_layout(array.shape, array.dtype.name, array.dtype.kind)
        audio = torch.from_numpy(np.ascontiguousarray(array))
    dtype_name = str(audio.dtype).removeprefix("torch.")
    is_bool = audio.dtype == torch.bool
    kind = "f" if audio.is_floating_point() else "c" if audio.is_complex() else "b" if is_bool else "i"
    check_audio_layout(tuple(audio.shape), dtype_name, kind)
    audio = audio.to(torch.float32).contiguous()
    check_finite(torch.isfinite(audio.sum(dim=1, dtype=torch.float64)).cpu().numpy())
    return audio


@contextmanager
def full_float32():
    """TF32 off for the call, restored after. On GPUs cuDNN convolutions default to TF32 and users may allow it
    for matmuls (torch.set_float32_matmul_precision); TF32 keeps 10 mantissa bits, ~3e-4 relative error,
    fifteen times the parity tolerance. No effect on CPUs."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def get_timestamp_embeddings(audio, model: HearDualModel) -> tuple[torch.Tensor, torch.Tensor]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    return _embed(_as_audio_tensor(audio), model, model.spec.hop_samples)


def _embed(audio: torch.Tensor, model: HearDualModel, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings every `hop` samples: the timestamp hop, or a waveform spec's scene hop."""
    model.to(audio.device)
    n_sounds, n_samples = audio.shape
    spec = model.spec
    embeddings = torch.empty((n_sounds, num_timestamps(spec, n_samples, hop), model.timestamp_embedding_size),
                             device=audio.device)
    chunk_timestamps = model.chunk_timestamps or auto_chunk_timestamps(spec, n_sounds, hop)
    with torch.inference_mode(), full_float32():
        if n_sounds and hop != spec.hop_samples:     # a waveform spec's scene hop: its frames as rows of a batch
            for group in frame_groups(spec, n_samples, n_sounds, hop):
                x = torch.stack([F.pad(audio[:, c.src_start : c.src_stop], (c.pad_left, c.pad_right))
                                 for c in group], dim=1)
                rows = model(x.reshape(-1, x.shape[2]))
                embeddings[:, group[0].out_start : group[-1].out_stop] = rows.reshape(n_sounds, len(group), -1)
        elif n_sounds:
            for chunk in chunk_plan(spec, n_samples, chunk_timestamps, hop):
                x = F.pad(audio[:, chunk.src_start : chunk.src_stop], (chunk.pad_left, chunk.pad_right))
                embeddings[:, chunk.out_start : chunk.out_stop] = model(x)
    timestamps = torch.from_numpy(timestamps_ms(spec, n_samples, hop)).to(audio.device).repeat(n_sounds, 1)
    return embeddings, timestamps


def pool_scene(embeddings: torch.Tensor, pooling: list[str]) -> torch.Tensor:
    pooled = {"mean": lambda e: e.mean(dim=1, dtype=torch.float64).float(), "max": lambda e: e.amax(dim=1)}
    return torch.cat([pooled[p](embeddings) for p in pooling], dim=1)


def get_scene_embeddings(audio, model: HearDualModel) -> torch.Tensor:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    embeddings, _ = _embed(_as_audio_tensor(audio), model, model.spec.scene_hop_samples)
    if embeddings.shape[0] == 0:
        return torch.zeros((0, model.scene_embedding_size), device=embeddings.device)
    return pool_scene(embeddings, model.spec.scene_pooling)


def pairwise_distance(emb1, emb2, metric: str = "l1") -> torch.Tensor:
    """(n1, n_frames, D) x (n2, n_frames, D) -> (n1, n2): unnormalised L1 (or L2) over frames and dims."""
    emb1, emb2 = torch.as_tensor(emb1), torch.as_tensor(emb2)
    rows = check_pairwise(tuple(emb1.shape), tuple(emb2.shape), metric)
    emb2 = emb2.to(emb1.device)
    blocks = []
    for start in range(0, emb1.shape[0], rows):
        diff = emb1[start : start + rows, None].float() - emb2[None].float()
        blocks.append(diff.abs().sum(dim=(2, 3)) if metric == "l1" else diff.square().sum(dim=(2, 3)).sqrt())
    return torch.cat(blocks) if blocks else torch.zeros((0, emb2.shape[0]), device=emb1.device)
