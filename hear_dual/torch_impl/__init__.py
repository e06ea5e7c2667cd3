"""The HEAR 2021 API in PyTorch: load_model, get_timestamp_embeddings, get_scene_embeddings."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ModuleNotFoundError as e:        # hear_dual.torch_impl without torch: one line saying what to install
    from hear_dual.extras import missing_extra

    raise missing_extra(e, "hear_dual.torch_impl") from None

from hear_dual.audio import Plan, embedding_plan, timestamps_ms
from hear_dual.inputs import check_audio_layout, check_finite, check_finite_embeddings, check_pairwise
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
    check_finite(_finite_rows(audio))
    return audio


def _finite_rows(x: torch.Tensor) -> np.ndarray:
    """Per row of x (sounds first): no NaN or infinity. One carries into the row's max or min; a float64 sum, as the
    numpy backends take, made torch copy its input to float64 first (20 minutes of musicnn's output: 453 MB, a peak
    of 1013 MiB; of audio: 58 MiB)."""
    if not x.numel():
        return np.ones(x.shape[0], dtype=bool)
    dims = tuple(range(1, x.dim()))
    return (torch.isfinite(x.amax(dim=dims)) & torch.isfinite(x.amin(dim=dims))).cpu().numpy()


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
    audio = _as_audio_tensor(audio)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], chunk_timestamps=model.chunk_timestamps)
    timestamps = torch.from_numpy(timestamps_ms(model.spec, audio.shape[1])).to(audio.device)
    return _embed(audio, model, plan)[:, : plan.n_timestamps], timestamps.repeat(audio.shape[0], 1)


def _embed(audio: torch.Tensor, model: HearDualModel, plan: Plan) -> torch.Tensor:
    """(n_sounds, plan.n_outputs, D): the plan's steps in order (hear_dual.audio.embedding_plan)."""
    model.to(audio.device)
    n_sounds = audio.shape[0]
    embeddings = torch.empty((n_sounds, plan.n_outputs, model.timestamp_embedding_size), device=audio.device)
    with torch.inference_mode(), full_float32():
        for lo in range(0, n_sounds, plan.sounds):
            part, out = audio[lo : lo + plan.sounds], embeddings[lo : lo + plan.sounds]
            for step in plan.steps:
                if isinstance(step, list):       # units that each have their own input: rows of one batch
                    x = torch.stack([F.pad(part[:, c.src_start : c.src_stop], (c.pad_left, c.pad_right))
                                     for c in step], dim=1)
                    rows = model(x.reshape(-1, x.shape[2]))
                    out[:, step[0].out_start : step[-1].out_stop] = rows.reshape(part.shape[0], -1, rows.shape[2])
                else:
                    x = F.pad(part[:, step.src_start : step.src_stop], (step.pad_left, step.pad_right))
                    out[:, step.out_start : step.out_stop] = model(x)
        check_finite_embeddings(_finite_rows(embeddings), model)
    return embeddings


def pool_scene(embeddings: torch.Tensor, pooling: list[str], tile: int | None = None) -> torch.Tensor:
    """Each pooling over every `tile` consecutive embeddings (default all), concatenated, then the mean over the
    tiles, all in float64 (SPEC section 6)."""
    groups = embeddings.reshape(embeddings.shape[0], -1, tile or embeddings.shape[1], embeddings.shape[2])
    pooled = {"mean": lambda e: e.mean(dim=2, dtype=torch.float64), "max": lambda e: e.amax(dim=2).double()}
    return torch.cat([pooled[p](groups) for p in pooling], dim=2).mean(dim=1).float()


def get_scene_embeddings(audio, model: HearDualModel) -> torch.Tensor:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    audio = _as_audio_tensor(audio)
    if audio.shape[0] == 0:
        return torch.zeros((0, model.scene_embedding_size), device=audio.device)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], scene=True,
                          chunk_timestamps=model.chunk_timestamps)
    return pool_scene(_embed(audio, model, plan), model.spec.scene_pooling, plan.tile)


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
