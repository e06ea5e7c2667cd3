"""toy_torch at 22050 Hz: a module that cannot be compared with the 16 kHz toys."""

from toy_torch import ToyModel, get_scene_embeddings, get_timestamp_embeddings

__all__ = ["ToyModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings"]


def load_model(model_file_path: str = "") -> ToyModel:
    return ToyModel(sample_rate=22050).eval()
