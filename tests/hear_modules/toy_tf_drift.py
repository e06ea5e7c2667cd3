"""toy_tf with a classic, subtle porting drift: the log offset became 1e-7 (Keras' backend.epsilon()), not 1e-6.

Loud frames barely notice (log(E + 1e-6) - log(E + 1e-7) ~ 9e-7 / E); silence and quiet bands do.
"""

from toy_tf import ToyModel, get_scene_embeddings, get_timestamp_embeddings

__all__ = ["ToyModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings"]


def load_model(model_file_path: str = "") -> ToyModel:
    return ToyModel(log_offset=1e-7)
