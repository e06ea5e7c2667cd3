"""Write hear-dual checkpoints: the ONNX graph of hear_dual.onnx_graph, built from a spec and numpy parameters
with the onnx package alone (no framework, no exporter), the spec in its metadata.

    python -m hear_dual.export --variant hear-dual-base --seed 0 --out hear_dual/checkpoints/hear-dual-base-seeded.onnx
    python -m hear_dual.export --variant hear-dual-compact --seed 0 \
        --out hear_dual/checkpoints/hear-dual-compact-seeded.onnx     # when hear-dual-compact was its 1.0 stream
        # architecture (training/specs/hear-dual-compact-stream.json), which that file still embeds
    python -m hear_dual.export --spec my-spec.json --params weights.npz --out my-model.onnx

Before writing, the graph must pass onnx.checker and, where onnxruntime is installed, agree with the float64
reference on a probe chunk within the spec's tolerance; after writing, the reader must accept the file. Checkpoints
written before this writer existed (torch.onnx exports) keep their bytes and load as before: every backend rebuilds
the model from the spec and the weights, never from the stored graph's nodes.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from hear_dual.audio import embedding_plan, frontend_constants, padded_input_length
from hear_dual.checkpoint import (
    FORMAT_VERSION,
    GRAPH_INPUT,
    META_FORMAT,
    META_PROVENANCE,
    META_SPEC,
    META_SPEC_SHA256,
    META_SPEC_VERSION,
    read_checkpoint,
)
from hear_dual.signals import SIGNAL_KINDS, make_signal
from hear_dual.spec import CONV_OPS, Spec, weight_shape


def seeded_parameters(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """Untrained weights at realistic scales: He-normal convolutions, non-zero biases, varied norms."""
    rng = np.random.default_rng(seed)
    params = {}
    for layer in spec.layers:
        if layer.op in CONV_OPS:
            shape = weight_shape(layer)
            params[f"{layer.name}.weight"] = rng.normal(0, np.sqrt(2.0 / math.prod(shape[1:])), shape)
            params[f"{layer.name}.bias"] = rng.normal(0, 0.05, shape[0])
        elif layer.op == "batchnorm":
            params[f"{layer.name}.weight"] = rng.uniform(0.7, 1.3, layer.channels)
            params[f"{layer.name}.bias"] = rng.normal(0, 0.1, layer.channels)
            params[f"{layer.name}.running_mean"] = np.zeros(layer.channels)
            params[f"{layer.name}.running_var"] = np.ones(layer.channels)
    return {name: array.astype(np.float32) for name, array in params.items()}


def calibration_audio(spec: Spec, seconds: float = 2.0, seed: int = 1234) -> np.ndarray:
    """A varied, deterministic batch: every test-signal kind at two amplitudes."""
    n = int(seconds * spec.sample_rate)
    clips = [make_signal(kind, n, spec.sample_rate, seed + i) * gain
             for i, kind in enumerate(SIGNAL_KINDS) for gain in (1.0, 0.05)]
    return np.stack(clips).astype(np.float32)


def padded_steps(spec: Spec, audio: np.ndarray) -> list[np.ndarray]:
    """The padded inputs a backend's model sees for `audio` (timestamp embeddings, chunks as long as they go)."""
    plan = embedding_plan(spec, audio.shape[1], audio.shape[0], chunk_timestamps=10**9)
    steps = []
    for step in plan.steps:
        units = step if isinstance(step, list) else [step]
        steps.append(np.concatenate([np.pad(audio[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left, c.pad_right)))
                                     for c in units]))
    return steps


def calibrate_batchnorm(spec: Spec, params: dict, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Set each batchnorm's running statistics to those of its actual input, as training would (float64 reference,
    in layer order, so each batchnorm sees the already calibrated ones before it)."""
    import hear_dual.reference as reference

    params = dict(params)
    model = reference.ReferenceModel(spec, params, frontend_constants(spec))

    def calibrate(layer, x: np.ndarray) -> None:
        if layer.op == "batchnorm":
            axes = (0, *range(2, x.ndim))        # every axis but the channels
            params[f"{layer.name}.running_mean"] = x.mean(axis=axes).astype(np.float32)
            params[f"{layer.name}.running_var"] = x.var(axis=axes, ddof=1).astype(np.float32)

    x = np.concatenate([reference.frontend(padded, model) for padded in padded_steps(spec, audio)])
    reference.run_encoder(x, model, before_layer=calibrate)
    return params


def build_checkpoint(spec: Spec, params: dict, provenance: dict | None = None):
    """The checkpoint as an onnx.ModelProto: the graph, every parameter under its spec name, the metadata."""
    import onnx

    from hear_dual.onnx_graph import build_graph

    missing = sorted(set(spec.parameter_shapes) - set(params))
    extra = sorted(set(params) - set(spec.parameter_shapes))
    if missing or extra:
        raise ValueError(f"parameters do not fit {spec.name}: missing {missing}, unexpected {extra}")
    params = {name: np.ascontiguousarray(params[name], dtype=np.float32) for name in spec.parameter_shapes}
    wrong = {n: (params[n].shape, shape) for n, shape in spec.parameter_shapes.items() if params[n].shape != shape}
    if wrong:
        raise ValueError(f"parameters do not fit {spec.name}: shapes (got, expected) {wrong}")
    model = build_graph(spec, params, frontend_constants(spec))
    meta = {META_FORMAT: FORMAT_VERSION, META_SPEC: spec.to_json(), META_SPEC_VERSION: spec.version,
            META_SPEC_SHA256: spec.sha256}
    if provenance is not None:
        meta[META_PROVENANCE] = json.dumps(provenance, sort_keys=True)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model


def verify_with_onnxruntime(model, spec: Spec, params: dict) -> float | None:
    """max |onnxruntime - float64 reference| / max(1, max |reference|) on a probe chunk; raises past the spec's
    tolerance. None (nothing run) where onnxruntime is not installed: the graph was still checked by onnx."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None

    import hear_dual.reference as reference

    n_units = 1 if spec.is_patched and spec.per_frame else 5
    probe = np.random.default_rng(1).uniform(-1, 1, (2, padded_input_length(spec, n_units))).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {GRAPH_INPUT: probe})[0]
    want = reference.encode(probe, reference.ReferenceModel(spec, params, frontend_constants(spec)))
    if got.shape != want.shape:
        raise RuntimeError(f"the ONNX graph gives shape {got.shape} on a probe chunk, the reference {want.shape}")
    deviation = float(np.abs(got - want).max() / max(1.0, np.abs(want).max()))
    if deviation > spec.tolerance:
        raise RuntimeError(f"the ONNX graph is {deviation:.3g} from the float64 reference (tolerance {spec.tolerance})")
    return deviation


def write_checkpoint(spec: Spec, params: dict, out_path, provenance: dict | None = None) -> str:
    """Write (spec, canonical-layout params) as a verified checkpoint at out_path (atomically); returns the path."""
    import onnx

    model = build_checkpoint(spec, params, provenance)
    verify_with_onnxruntime(model, spec, {name: np.asarray(p, np.float32) for name, p in params.items()})
    out_path = os.fspath(out_path)
    tmp_out = f"{out_path}.tmp{os.getpid()}"
    onnx.save(model, tmp_out)
    os.replace(tmp_out, out_path)
    read_checkpoint(out_path)  # the reader must accept what the writer wrote
    return out_path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hear_dual.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--variant", help="a built-in spec; weights are seeded and BatchNorm-calibrated")
    source.add_argument("--spec", help="a spec JSON file; needs --params")
    parser.add_argument("--params", help=".npz of canonical-layout parameters keyed by spec name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--provenance", help="JSON object stored as the checkpoint's hear_dual.provenance metadata")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    if args.variant:
        spec = Spec.builtin(args.variant)
        params = calibrate_batchnorm(spec, seeded_parameters(spec, args.seed), calibration_audio(spec))
    else:
        if not args.params:
            parser.error("--spec needs --params")
        with open(args.spec) as f:
            spec = Spec.from_json(f.read())
        with np.load(args.params, allow_pickle=False) as npz:
            params = {name: npz[name] for name in npz.files}
    write_checkpoint(spec, params, args.out, json.loads(args.provenance) if args.provenance else None)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
