"""What `hear-dual evaluate` evaluates: a HEAR module by import name plus weights, or a named reference."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

import numpy as np

from hear_dual import hear_module

REFERENCES = {
    "seeded-random": ("hear_dual.torch_impl", "seeded",
                      "hear_dual.torch_impl, hear-dual-base-seeded checkpoint (seeded, untrained)"),
    "seeded-compact": ("hear_dual.torch_impl", "compact-seeded",
                       "hear_dual.torch_impl, hear-dual-compact-seeded checkpoint (seeded, untrained)"),
    "logmel-stats": ("hear_dual.baselines", "",
                     "hear_dual.baselines: mean and std over time of the log-mel frontend, no learning"),
    "randproj": ("hear_dual.torch_impl", "randproj",
                 "hear_dual.torch_impl, hear-dual-randproj checkpoint: random projection to 4096-d, mean"),
}


@dataclass
class ModelRef:
    """What to evaluate: a HEAR module by import name plus weights, or a reference."""
    label: str
    module: str
    weights: str = ""
    reference: str | None = None
    description: str = ""


def model_ref(name: str, weights: str = "") -> ModelRef:
    """A reference name (a key of REFERENCES, e.g. 'logmel-stats') or a module import name."""
    if name in REFERENCES:
        if weights:
            raise ValueError(f"{name} is a reference with fixed weights; --weights does not apply")
        module, checkpoint, description = REFERENCES[name]
        if checkpoint:
            import hear_dual.checkpoints

            checkpoint = hear_dual.checkpoints.path(checkpoint)
        return ModelRef(name, module, checkpoint, name, description)
    label = f"{name} [{os.path.basename(weights)}]" if weights else name
    return ModelRef(label, name, weights, None, f"{name}, weights {weights or '(module default)'}")


@dataclass
class Loaded:
    ref: ModelRef
    hear: hear_module.LoadedModule
    weights_id: str           # what the embedding cache keys on
    sample_rate: int
    load_seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def kind(self) -> str:
        return self.hear.kind

    @property
    def model(self):
        return self.hear.model


def _file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(ref: ModelRef) -> Loaded:
    """Import and load the module (a model that is neither a torch nor a TF module is called with numpy)."""
    start = time.perf_counter()
    loaded = hear_module.load_hear_module(ref.module, ref.weights, allow_numpy=True)
    rate = getattr(loaded.model, "sample_rate", None)
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise ValueError(f"model of {ref.module} has no positive integer sample_rate (got {rate!r})")
    # The content, never a name: a short name such as "compact" names whatever file ships today.
    sha256 = getattr(loaded.model, "checkpoint_sha256", None)
    if sha256:
        weights_id = str(sha256)
    elif ref.weights and os.path.isfile(ref.weights):
        weights_id = _file_sha256(ref.weights)
    elif ref.weights:
        weights_id = f"weights:{ref.weights}"
    else:
        weights_id = "default"
    return Loaded(ref, loaded, weights_id, int(rate), load_seconds=time.perf_counter() - start)


def default_cache_dir():
    from pathlib import Path

    return Path(os.environ.get("HEAR_DUAL_CACHE") or Path.home() / ".cache" / "hear-dual" / "embeddings")
