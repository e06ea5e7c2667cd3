"""musicnn (Pons and Serra 2019) from the musicnn 0.1.0 package's published TF1 checkpoints (ISC licence).

    hear-dual convert musicnn --model MTT_musicnn --out hear-dual-musicnn-mtt.onnx

The checkpoint (`<model>/.index` and `.data-00000-of-00001` inside the installed package, found without importing
it: importing musicnn would import TensorFlow and run its code) is read by hear_dual.converters.tf_checkpoint, in
numpy, so converting needs neither TensorFlow nor torch. TF1 names each layer by its kind and creation order
(conv2d, conv2d_1, ...; batch_normalization, batch_normalization_1, ...; the vgg convolutions are named 1CNN to 5CNN
by musicnn's models.py); the spec lists its layers in that same order, so the names follow from it. Kernels
come out of TF in TF's layout and become canonical in hear_dual.layout.from_tf_layout; the mid-end's (7, width)
convolutions over a one-channel map are the spec's conv1d over width channels, so their kernels lose the singleton
axis first. The tagging back-end (batch norm, dense, dropout, the output layer) is not part of the embedding and is
dropped, as are Adam's slots; everything else must be there, with the shape the spec says.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from hear_dual.checkpoints import SOURCES
from hear_dual.converters.tf_checkpoint import list_tf_checkpoint, read_tf_checkpoint
from hear_dual.layout import from_tf_layout
from hear_dual.spec import Spec

MODELS = tuple(model for converter, model in SOURCES.values() if converter == "musicnn")
LICENSE = "ISC (musicnn 0.1.0, Copyright (c) 2019 Music Technology Group, Universitat Pompeu Fabra)"
# Not part of the embedding: musicnn's tagging back-end and the optimiser's state.
DROPPED = ("batch_normalization_9/", "batch_normalization_10/", "dense/", "dense_1/", "beta1_power", "beta2_power")
TF_TENSORS = {"weight": "kernel", "bias": "bias"}
TF_BATCHNORM = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def model_dir(model: str, source=None) -> Path:
    """The folder holding `model`'s checkpoint: `source`, or the installed musicnn package's, found without
    importing it."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; expected one of {list(MODELS)}")
    if source is not None:
        folder = Path(source)
    else:
        found = importlib.util.find_spec("musicnn")
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError("musicnn is not installed; `pip install --no-deps musicnn==0.1.0` provides its "
                                    "weights (TensorFlow and its other dependencies are not needed to convert)")
        folder = Path(next(iter(found.submodule_search_locations))) / model
    if not (folder / ".index").is_file():
        raise FileNotFoundError(f"no musicnn checkpoint in {folder} (expected its .index and .data-00000-of-00001)")
    return folder


def musicnn_version() -> str:
    try:
        return importlib.metadata.version("musicnn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def tf1_names(spec: Spec) -> dict[str, str]:
    """Spec layer -> the TF1 scope musicnn created it under (see the module docstring)."""
    names, counts = {}, {}
    for layer in spec.layers:
        kind = {"batchnorm": "batch_normalization", "conv1d": "conv2d", "conv2d": "conv2d"}.get(layer.op)
        if kind is None:
            continue
        n = counts[kind] = counts.get(kind, -1) + 1
        names[layer.name] = kind if n == 0 else f"{kind}_{n}"
        if kind == "conv2d" and "vgg" in spec.name:
            names[layer.name] = f"{n + 1}CNN"
    return names


def convert_tensors(tensors: dict[str, np.ndarray], spec: Spec) -> tuple[dict[str, np.ndarray], list[str]]:
    """musicnn's TF1 tensors -> the spec's canonical parameters; returns (params, dropped names). Refuses, by
    name, a missing tensor, one the spec has no place for, and one of the wrong shape."""
    ops = {layer.name: layer.op for layer in spec.layers}
    wanted = {}         # TF name -> spec parameter name
    for layer, scope in tf1_names(spec).items():
        parts = TF_BATCHNORM if ops[layer] == "batchnorm" else TF_TENSORS
        wanted |= {f"{scope}/{tf_name}": f"{layer}.{ours}" for ours, tf_name in parts.items()}
    dropped = sorted(n for n in tensors if n not in wanted and ("/Adam" in n or n.startswith(DROPPED)))
    missing = sorted(set(wanted) - set(tensors))
    extra = sorted(set(tensors) - set(wanted) - set(dropped))
    dropped = [n for n in dropped if "/Adam" not in n]      # the optimiser's slots are not worth listing
    if missing or extra:
        raise ValueError(f"musicnn weights do not fit {spec.name}: missing {missing}, unexpected {extra}")
    params, wrong = {}, {}
    for tf_name, name in wanted.items():
        array = tensors[tf_name]
        if ops[name.split(".")[0]] == "conv1d" and name.endswith(".weight"):
            if array.ndim != 4 or array.shape[2] != 1:     # (7, width, 1, out): a conv over a one-channel map
                wrong[tf_name] = (array.shape, "(kernel, width, 1, out)")
                continue
            array = array[:, :, 0]
        array = from_tf_layout(name, np.ascontiguousarray(array, dtype=np.float32))
        if array.shape != spec.parameter_shapes[name]:
            wrong[tf_name] = (array.shape, spec.parameter_shapes[name])
        params[name] = array
    if wrong:
        raise ValueError(f"musicnn weights do not fit {spec.name}: shapes (got, expected) {wrong}")
    return params, dropped


def convert(model: str, variant: str, out_path, source=None) -> str:
    """Write musicnn's `model` (MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg) as `variant` to out_path, from the
    installed package's checkpoint or the folder `source` holding one."""
    from hear_dual.export import write_checkpoint

    folder = model_dir(model, source)
    spec = Spec.builtin(variant)
    numeric = [name for name, (dtype, _) in list_tf_checkpoint(folder).items() if not dtype.startswith("DT_")]
    params, dropped = convert_tensors(read_tf_checkpoint(folder, numeric), spec)
    data = folder / ".data-00000-of-00001"
    provenance = {"source": "musicnn", "version": musicnn_version(), "model": model,
                  "file": f"musicnn/{model}/{data.name}", "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
                  "index_sha256": hashlib.sha256((folder / ".index").read_bytes()).hexdigest(),
                  "license": LICENSE, "dropped": dropped}
    return write_checkpoint(spec, params, out_path, provenance)
