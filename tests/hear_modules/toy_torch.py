"""A toy HEAR 2021 module in PyTorch: log band energies of 25 ms frames every 20 ms, scene = mean."""

import numpy as np
import torch
import torch.nn.functional as F
from toy_constants import FRAME, HOP, LOG_OFFSET, N_BANDS, SAMPLE_RATE, band_basis, n_frames, timestamps_ms


class ToyModel(torch.nn.Module):
    timestamp_embedding_size = N_BANDS
    scene_embedding_size = N_BANDS

    def __init__(self, sample_rate: int = SAMPLE_RATE, log_offset: float = LOG_OFFSET):
        super().__init__()
        self.sample_rate = sample_rate
        self.log_offset = log_offset
        self.register_buffer("basis", torch.from_numpy(band_basis(sample_rate)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = F.pad(audio.to(torch.float64), (FRAME // 2, FRAME // 2))
        frames = x.unfold(1, FRAME, HOP)[:, : n_frames(audio.shape[1])]
        z = frames @ self.basis
        energy = z[..., :N_BANDS] ** 2 + z[..., N_BANDS:] ** 2
        return torch.log(energy + self.log_offset).to(torch.float32)


def load_model(model_file_path: str = "") -> ToyModel:
    return ToyModel().eval()


def _as_tensor(audio, model) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor):
        audio = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return audio.to(model.basis.device)


def get_timestamp_embeddings(audio, model: ToyModel):
    audio = _as_tensor(audio, model)
    with torch.no_grad():
        embeddings = model(audio)
    stamps = torch.from_numpy(timestamps_ms(audio.shape[1], model.sample_rate)).to(audio.device)
    return embeddings, stamps.repeat(audio.shape[0], 1)


def get_scene_embeddings(audio, model: ToyModel) -> torch.Tensor:
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return embeddings.mean(dim=1)
