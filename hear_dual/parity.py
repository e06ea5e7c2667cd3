"""The parity gate, in numpy: the one definition every test, report and CLI command uses.

    passes  <=>  max|a - b| <= tol * max(1, max|ref|)  and  min cosine(a_i, b_i) >= min_cosine
             and timestamps identical
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np


def to_numpy(x) -> np.ndarray:
    """A torch tensor (any device), a TF tensor or variable, or anything numpy takes, as a numpy array."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(x, (tf.Tensor, tf.Variable)):
        return x.numpy()
    return np.asarray(x)


@dataclass(frozen=True)
class Agreement:
    max_abs_diff: float
    max_rel_diff: float        # max_abs_diff / max(1, max|ref|)
    min_cosine: float          # over embedding vectors, computed in float64
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cos)


def agreement(ref, other, tol: float, min_cosine: float) -> Agreement:
    ref, other = np.asarray(ref), np.asarray(other)
    if ref.shape != other.shape:
        raise ValueError(f"cannot compare outputs of shapes {ref.shape} and {other.shape}")
    if ref.size == 0:
        return Agreement(0.0, 0.0, 1.0, True)
    if not (np.isfinite(ref).all() and np.isfinite(other).all()):
        return Agreement(float("inf"), float("inf"), float("nan"), False)
    max_abs = float(np.abs(ref.astype(np.float64) - other.astype(np.float64)).max())
    max_rel = max_abs / max(1.0, float(np.abs(ref).max()))
    min_cos = float(cosine_rows(ref, other).min())
    return Agreement(max_abs, max_rel, min_cos, max_rel <= tol and min_cos >= min_cosine)


# --- the parity matrix: every backend pair x input class x length x batch size ------------------------

NATIVE = ("torch", "tf", "onnx")           # the three implementations; tf2onnx runs tf_impl's graph exported
BACKENDS = NATIVE + ("tf2onnx",)
LENGTHS_S = {"short": 400 / 16000, "0.99s": 0.99, "1s": 1.0, "2.74s": 2.74, "60s": 60.0}
BATCHES = (1, 3, 16)


def scene_of(module, audio, model, embeddings):
    """`module`'s scene embeddings of `audio`, given its timestamp embeddings of it: pooled from those where the
    scene pools the timestamp embeddings (no second pass), else its own pass (a scene hop, tiled patches; SPEC 6).
    `module` is any hear-dual backend module, or hear_dual.reference."""
    spec = model.spec
    if spec.scene_from_timestamps:
        return module.pool_scene(embeddings, spec.scene_pooling)
    return module.get_scene_embeddings(audio, model)


class Backend:
    """One implementation of the HEAR API, run on numpy audio, giving numpy outputs.

    Scene embeddings are pooled by the backend's own pool_scene from its own timestamp embeddings, so
    each audio batch is embedded once per backend (twice where the spec has a scene hop of its own).
    """

    def __init__(self, name: str, weights: str = "", tf2onnx_path: str | None = None):
        self.name = name
        if name == "torch":
            import hear_dual.torch_impl as module
        elif name == "tf":
            import hear_dual.tf_impl as module
        elif name in ("onnx", "tf2onnx"):
            import hear_dual.onnx_impl as module
        else:
            raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
        self.module = module
        if name == "tf2onnx":
            from hear_dual.tf_export import load_tf2onnx_model

            if tf2onnx_path is None:
                raise ValueError("the tf2onnx backend needs the path of a graph from hear_dual.tf_export")
            self.model = load_tf2onnx_model(tf2onnx_path)
        else:
            self.model = module.load_model(weights)
        self.spec = self.model.spec

    @classmethod
    def loaded(cls, name: str, module, model) -> Backend:
        """A Backend around an already loaded model of the HEAR API module `module`."""
        backend = cls.__new__(cls)
        backend.name, backend.module, backend.model, backend.spec = name, module, model, model.spec
        return backend

    def embed(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        embeddings, timestamps = self.module.get_timestamp_embeddings(audio, self.model)
        scene = scene_of(self.module, audio, self.model, embeddings)
        return tuple(to_numpy(x) for x in (embeddings, timestamps, scene))

    def scene(self, audio: np.ndarray) -> np.ndarray:
        """Scene embeddings alone: a spec with a scene pass of its own (VGG's tiled patches) skips the timestamp
        embeddings, which cost it a 3 s patch every 48 ms against one per 3 s (62x)."""
        if self.spec.scene_from_timestamps:
            return self.embed(audio)[2]
        return to_numpy(self.module.get_scene_embeddings(audio, self.model))


def input_batch(kind: str, n_sounds: int, n_samples: int, sample_rate: int, seed: int = 0) -> np.ndarray | None:
    """A synthetic signal batch, or for kind 'speech' FSDD recordings strung together (None without FSDD)."""
    from hear_dual.signals import signal_batch

    if kind != "speech":
        return signal_batch(kind, n_sounds, n_samples, sample_rate, seed)
    from hear_dual.datasets import fsdd_batch

    clips = fsdd_batch(sample_rate, n_clips=24, seed=seed)
    if clips is None:
        return None
    flat = np.concatenate([c[np.abs(c) > 0] if np.any(c) else c for c in clips])
    reps = int(np.ceil(n_sounds * n_samples / flat.size))
    flat = np.tile(flat, reps)
    return np.stack([np.roll(flat, -i * 7919)[:n_samples] for i in range(n_sounds)]).astype(np.float32)


def compare_outputs(spec, ref: tuple, other: tuple) -> dict:
    (re, rt, rs), (oe, ot, os_) = ref, other
    stamp = agreement(re, oe, spec.tolerance, spec.min_cosine)
    scene = agreement(rs, os_, spec.tolerance, spec.min_cosine)
    same_times = rt.shape == ot.shape and np.array_equal(rt, ot)
    return {"timestamp": stamp.as_dict(), "scene": scene.as_dict(), "timestamps_identical": bool(same_times),
            "passed": bool(stamp.passed and scene.passed and same_times)}


def run_matrix(backends: dict, inputs, lengths: dict, batches, progress=None) -> list[dict]:
    """Rows of {pair, input, length, batch, timestamp, scene, timestamps_identical, passed}."""
    from itertools import combinations

    names = list(backends)
    spec = backends[names[0]].spec
    rows = []
    for kind in inputs:
        for length_name, seconds in lengths.items():
            n_samples = max(1, int(round(seconds * spec.sample_rate)))
            for batch in batches:
                audio = input_batch(kind, batch, n_samples, spec.sample_rate)
                if audio is None:
                    continue
                outputs = {name: backend.embed(audio) for name, backend in backends.items()}
                for a, b in combinations(names, 2):
                    rows.append({"pair": f"{a} vs {b}", "input": kind, "length": length_name, "batch": batch}
                                | compare_outputs(spec, outputs[a], outputs[b]))
                if progress:
                    progress(kind, length_name, batch)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (pair, input class): worst values over lengths and batch sizes."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["pair"], row["input"]), []).append(row)
    table = []
    for (pair, kind), group in groups.items():
        table.append({
            "pair": pair, "input": kind, "cases": len(group),
            "max_abs_diff": max(max(r["timestamp"]["max_abs_diff"], r["scene"]["max_abs_diff"]) for r in group),
            "max_rel_diff": max(max(r["timestamp"]["max_rel_diff"], r["scene"]["max_rel_diff"]) for r in group),
            "min_cosine": min(min(r["timestamp"]["min_cosine"], r["scene"]["min_cosine"]) for r in group),
            "timestamps_identical": all(r["timestamps_identical"] for r in group),
            "passed": all(r["passed"] for r in group),
        })
    return table


def encoders_on_frontend_output(path: str) -> dict:
    """backend -> a function from a frontend output in canonical layout (a log-mel patch batch (n, time, freq) of a
    patch spec, or (n, channels, time) of a stream) to that backend's encoder output in channels-last layout, for
    torch, tf, onnx and the float64 reference: the networks compared on the very same input (e.g. another
    implementation's log-mel), so the frontend's share of a difference is separated from the network's."""
    import onnxruntime as ort
    import torch

    import hear_dual.reference as reference
    import hear_dual.tf_impl as tf_backend
    import hear_dual.torch_impl as torch_backend
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.onnx_graph import build_graph
    from hear_dual.tf_impl.model import tf

    checkpoint = read_checkpoint(path)
    spec = checkpoint.spec
    torch_model, tf_model = torch_backend.load_model(path), tf_backend.load_model(path)
    session = ort.InferenceSession(build_graph(spec, checkpoint.params, checkpoint.constants,
                                               encoder_only=True).SerializeToString())
    model = reference.ReferenceModel(spec, checkpoint.params, checkpoint.constants)

    def canonical(x: np.ndarray) -> np.ndarray:          # a patch batch gets its one channel
        return x[:, None] if spec.is_patched else x

    def tf_layout(x: np.ndarray) -> np.ndarray:
        return x[..., None] if spec.is_patched else np.moveaxis(x, 1, -1)

    def channels_last(x: np.ndarray) -> np.ndarray:
        return np.moveaxis(x, 1, -1) if x.ndim >= 3 else x

    def run_torch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return channels_last(torch_model.run_encoder(torch.from_numpy(canonical(x))).numpy())

    return {"torch": run_torch,
            "tf": lambda x: tf_model.run_encoder(tf.constant(tf_layout(x))).numpy(),
            "onnx": lambda x: session.run(None, {"frontend": tf_layout(x)})[0],
            "float64": lambda x: channels_last(reference.run_encoder(canonical(x).astype(np.float64), model))}
