"""Any HEAR 2021 module by import name: load it and call it the way heareval does (compare, evaluate, embed).

heareval checks the model's type: a torch.nn.Module gets torch tensors on the model's device (under no_grad),
a tf.Module gets tf.convert_to_tensor of the numpy audio. HEAR requires one of the two. hear_dual.onnx_impl is the
same API on numpy and is called with numpy everywhere (compare included); evaluate and embed also accept any other
model that is neither (hear_dual.baselines) and call it with numpy.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from hear_dual.parity import to_numpy
from hear_dual.quiet import without_banners

API = ("load_model", "get_timestamp_embeddings", "get_scene_embeddings")
NOT_A_FRAMEWORK_MODEL = "a HEAR 2021 model must be a torch.nn.Module or a tf.Module"


@dataclass
class LoadedModule:
    name: str
    module: ModuleType
    model: object
    kind: str              # "torch", "tf", or "numpy" (only with allow_numpy)
    weights: str = ""


def model_kind(model, allow_numpy: bool = False) -> str:
    """'torch' for a torch.nn.Module, 'tf' for a tf.Module (a framework that is not imported cannot be the kind)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(model, tf.Module):
        return "tf"
    onnx_impl = sys.modules.get("hear_dual.onnx_impl")
    if allow_numpy or (onnx_impl is not None and isinstance(model, onnx_impl.OnnxModel)):
        return "numpy"          # hear_dual.onnx_impl is the same API on numpy: first-class in our own tools
    kind = type(model)
    raise TypeError(f"load_model returned a {kind.__module__}.{kind.__qualname__}; {NOT_A_FRAMEWORK_MODEL}")


def load_hear_module(name: str, weights: str = "", allow_numpy: bool = False, **options) -> LoadedModule:
    """Import a HEAR 2021 module by name and load its model: load_model(weights, **options), or
    load_model(**options) without weights (heareval's --model and --model-options)."""
    with without_banners():      # the module may import TensorFlow
        module = importlib.import_module(name)
    missing = [f for f in API if not callable(getattr(module, f, None))]
    if missing:
        raise AttributeError(f"module {name!r} lacks the HEAR 2021 function(s) {', '.join(missing)}")
    model = module.load_model(weights, **options) if weights else module.load_model(**options)
    return LoadedModule(name, module, model, model_kind(model, allow_numpy), weights)


def _torch_device(model):
    import torch

    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _call(loaded: LoadedModule, function: str, audio: np.ndarray):
    fn = getattr(loaded.module, function)
    if loaded.kind == "torch":
        import torch

        x = torch.from_numpy(np.ascontiguousarray(audio)).to(_torch_device(loaded.model))
        with torch.no_grad():
            return fn(x, loaded.model)
    if loaded.kind == "tf":
        import tensorflow as tf

        return fn(tf.convert_to_tensor(audio), loaded.model)
    return fn(audio, loaded.model)


def timestamp_embeddings(loaded: LoadedModule, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (n, T, D), timestamps (n, T) in ms) as numpy."""
    embeddings, timestamps = _call(loaded, "get_timestamp_embeddings", audio)
    return to_numpy(embeddings), to_numpy(timestamps)


def scene_embeddings(loaded: LoadedModule, audio: np.ndarray) -> np.ndarray:
    """(n, D) as numpy."""
    return to_numpy(_call(loaded, "get_scene_embeddings", audio))


def embed(loaded: LoadedModule, audio: np.ndarray, scene_only: bool = False):
    """(timestamp embeddings, timestamps, scene embeddings) as numpy; the first two are None when scene_only."""
    stamped = (None, None) if scene_only else timestamp_embeddings(loaded, audio)
    return (*stamped, scene_embeddings(loaded, audio))
