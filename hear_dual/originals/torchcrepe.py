"""CREPE through torchcrepe's own code (MIT) as a HEAR 2021 module, for tiny and full alike.

The organizers' `hearbaseline.torchcrepe` wraps `torchcrepe.embed` for CREPE full only; this module makes the
same calls for either capacity, so that hear-dual's CREPE ports have an original to be compared and timed against:

    hear-dual compare hear_dual.originals.torchcrepe hear_dual.torch_impl --weights-a tiny --weights-b crepe-tiny

Models (load_model's "path"): "full" (default) or "tiny", or hear-dual's names crepe-full, crepe-tiny. Definitions
(hearbaseline.torchcrepe's, and hear-dual's CREPE specs'): 16 kHz audio; `torchcrepe.embed(audio, 16000,
hop_length, model, pad=True)` on each sound, flattened channel-major; timestamps every 800 samples (50 ms),
`T = n // 800 + 1`; the scene embedding is the float64 mean, cast to float32, of the embeddings at hop 4000 (250 ms).
torchcrepe imports torchaudio, which cannot load beside torch 2.13: hear_dual.converters.torchcrepe.import_torchcrepe
stands in an empty module (torchcrepe reads no files here).
"""

from __future__ import annotations

import torch

from hear_dual.converters.torchcrepe import import_torchcrepe, torchcrepe_embeddings

SAMPLE_RATE = 16000
HOP, SCENE_HOP = 800, 4000
SIZES = {"tiny": 256, "full": 2048}
NAMES = {"tiny": "tiny", "full": "full", "crepe-tiny": "tiny", "crepe-full": "full"}


class TorchcrepeModel(torch.nn.Module):
    sample_rate = SAMPLE_RATE

    def __init__(self, capacity: str):
        super().__init__()
        self.capacity = capacity
        self.timestamp_embedding_size = self.scene_embedding_size = SIZES[capacity]


def load_model(model_file_path: str = "") -> TorchcrepeModel:
    """model_file_path names the capacity ("tiny" or "full"; "" is full, as hearbaseline.torchcrepe)."""
    capacity = NAMES.get(model_file_path or "full")
    if capacity is None:
        raise ValueError(f"unknown torchcrepe model {model_file_path!r}; expected one of {', '.join(NAMES)}")
    import_torchcrepe()
    return TorchcrepeModel(capacity)


def _embed(audio: torch.Tensor, model: TorchcrepeModel, hop: int) -> torch.Tensor:
    if audio.ndim != 2:
        raise ValueError(f"audio must be (n_sounds, n_samples); got shape {tuple(audio.shape)}")
    if audio.shape[0] == 0:
        return torch.zeros((0, audio.shape[1] // hop + 1, model.timestamp_embedding_size))
    return torch.from_numpy(torchcrepe_embeddings(audio.cpu().numpy(), model.capacity, SAMPLE_RATE, hop))


def get_timestamp_embeddings(audio: torch.Tensor, model: TorchcrepeModel) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        embeddings = _embed(audio, model, HOP)
    timestamps = torch.arange(embeddings.shape[1], dtype=torch.float64) * (HOP * 1000.0 / SAMPLE_RATE)
    return embeddings, timestamps.float().expand(embeddings.shape[0], -1)


def get_scene_embeddings(audio: torch.Tensor, model: TorchcrepeModel) -> torch.Tensor:
    with torch.inference_mode():
        embeddings = _embed(audio, model, SCENE_HOP)
    return embeddings.double().mean(dim=1).float()


__all__ = ["SAMPLE_RATE", "TorchcrepeModel", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
