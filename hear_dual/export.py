"""Write hear-dual checkpoints: the torch inference graph exported with torch.onnx, spec in metadata.

Export always runs in its own process (`python -m hear_dual.export ...`): torch.onnx.export can abort
in a process that has imported TensorFlow. `write_checkpoint` does that for callers.

    python -m hear_dual.export --variant hear-dual-base --seed 0 --out hear_dual/checkpoints/hear-dual-base-seeded.onnx
    python -m hear_dual.export --variant hear-dual-compact --seed 0 \
        --out hear_dual/checkpoints/hear-dual-compact-seeded.onnx     # when hear-dual-compact was its 1.0 stream
        # architecture (training/specs/hear-dual-compact-stream.json), which that file still embeds
    python -m hear_dual.export --spec my-spec.json --params weights.npz --out my-model.onnx
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from hear_dual.audio import chunk_plan, padded_input_length
from hear_dual.checkpoint import (
    FORMAT_VERSION,
    GRAPH_INPUT,
    GRAPH_OUTPUT,
    META_FORMAT,
    META_PROVENANCE,
    META_SPEC,
    META_SPEC_SHA256,
    META_SPEC_VERSION,
    read_checkpoint,
)
from hear_dual.signals import SIGNAL_KINDS, make_signal
from hear_dual.spec import CONV_OPS, Spec

ONNX_OPSET = 18


def seeded_parameters(spec: Spec, seed: int) -> dict[str, np.ndarray]:
    """Untrained weights at realistic scales: He-normal convolutions, non-zero biases, varied norms."""
    rng = np.random.default_rng(seed)
    params = {}
    for layer in spec.layers:
        if layer.op in CONV_OPS:
            fan_in = layer.in_channels * layer.kernel_size
            params[f"{layer.name}.weight"] = rng.normal(0, np.sqrt(2.0 / fan_in),
                                                        (layer.out_channels, layer.in_channels, layer.kernel_size))
            params[f"{layer.name}.bias"] = rng.normal(0, 0.05, layer.out_channels)
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


def calibrate_batchnorm(spec: Spec, params: dict, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Set each batchnorm's running statistics to those of its actual input, as training would."""
    import torch
    import torch.nn.functional as F

    from hear_dual.torch_impl.model import BatchNorm, HearDualModel

    params = dict(params)
    model = HearDualModel(spec).load_parameters(params)
    chunk, = chunk_plan(spec, audio.shape[1], chunk_timestamps=10**9)
    with torch.inference_mode():
        source = torch.from_numpy(np.ascontiguousarray(audio[:, chunk.src_start : chunk.src_stop]))
        x = model.frontend(F.pad(source, (chunk.pad_left, chunk.pad_right)))

        def calibrate(name: str, x: torch.Tensor) -> None:
            if isinstance(layer := getattr(model, name), BatchNorm):
                x64 = x.double()
                mean, var = x64.mean(dim=(0, 2)), x64.var(dim=(0, 2))
                params[f"{name}.running_mean"] = mean.float().numpy()
                params[f"{name}.running_var"] = var.float().numpy()
                layer.running_mean.copy_(mean.float())
                layer.running_var.copy_(var.float())

        model.run_encoder(x, before_layer=calibrate)
    return params


def export_onnx(spec: Spec, params: dict, out_path: str, provenance: dict | None = None) -> None:
    """Export in this process (callers that may have imported TensorFlow use write_checkpoint)."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    from hear_dual.torch_impl.model import HearDualModel

    model = HearDualModel(spec).load_parameters(params)
    hop = spec.frontend["hop_length"]
    example = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, padded_input_length(spec, 12)))
                               .astype(np.float32))
    batch = torch.export.Dim("batch", min=1, max=4096)
    if spec.is_framed:     # any chunk of at least one frame: samples = hop * (frames - 1) + frame_length
        dynamic_shapes = ({0: batch, 1: torch.export.Dim("samples", min=padded_input_length(spec, 1), max=10**8)},)
    else:                  # whole blocks of hop_length, so framing is a reshape
        blocks = torch.export.Dim("blocks", min=padded_input_length(spec, 1) // hop, max=10**7)
        dynamic_shapes = ({0: batch, 1: hop * blocks},)
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(model, (example,), raw_path, dynamo=True, optimize=False, external_data=False,
                          input_names=[GRAPH_INPUT], output_names=[GRAPH_OUTPUT], opset_version=ONNX_OPSET,
                          dynamic_shapes=dynamic_shapes)
        graph = onnx.load(raw_path)

    # The exporter must keep every tensor, unchanged, under its spec name: verify rather than trust.
    exported = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    expected = {name: t.detach().numpy() for name, t in model.state_dict().items()}
    wrong = [name for name in expected if name not in exported or not np.array_equal(exported[name], expected[name])]
    if wrong:
        raise RuntimeError(f"torch.onnx.export renamed or altered tensors {wrong}")

    del graph.metadata_props[:]
    meta = {META_FORMAT: FORMAT_VERSION, META_SPEC: spec.to_json(), META_SPEC_VERSION: spec.version,
            META_SPEC_SHA256: spec.sha256}
    if provenance is not None:
        meta[META_PROVENANCE] = json.dumps(provenance, sort_keys=True)
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name, graph.doc_string = "hear-dual", f"{spec.name}: {spec.raw.get('description', '')}"
    onnx.checker.check_model(graph, full_check=True)

    # Always load what was exported in onnxruntime before trusting it.
    probe = np.random.default_rng(1).uniform(-1, 1, (3, padded_input_length(spec, 37))).astype(np.float32)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {GRAPH_INPUT: probe})[0]
    with torch.inference_mode():
        want = model(torch.from_numpy(probe)).numpy()
    scale = max(1.0, float(np.abs(want).max()))
    if got.shape != want.shape or np.abs(got - want).max() > spec.tolerance * scale:
        raise RuntimeError(f"onnxruntime disagrees with torch on the exported graph: shapes {got.shape} vs "
                           f"{want.shape}, max diff {np.abs(got - want).max() if got.shape == want.shape else 'n/a'}")

    tmp_out = f"{out_path}.tmp{os.getpid()}"
    onnx.save(graph, tmp_out)
    os.replace(tmp_out, out_path)
    read_checkpoint(out_path)  # the reader must accept what the writer wrote


def write_checkpoint(spec: Spec, params: dict, out_path: str, provenance: dict | None = None) -> str:
    """Export (spec, canonical-layout params) to a checkpoint, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, params_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "params.npz")
        with open(spec_path, "w") as f:
            f.write(spec.to_json())
        np.savez(params_path, **{k: np.asarray(v, np.float32) for k, v in params.items()})
        command = [sys.executable, "-m", "hear_dual.export", "--spec", spec_path, "--params", params_path,
                   "--out", os.fspath(out_path)]
        if provenance is not None:
            command += ["--provenance", json.dumps(provenance)]
        run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"checkpoint export failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    return os.fspath(out_path)


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
        params = seeded_parameters(spec, args.seed)
        params = calibrate_batchnorm(spec, params, calibration_audio(spec))
    else:
        if not args.params:
            parser.error("--spec needs --params")
        with open(args.spec) as f:
            spec = Spec.from_json(f.read())
        with np.load(args.params, allow_pickle=False) as npz:
            params = {name: npz[name] for name in npz.files}
    export_onnx(spec, params, args.out, json.loads(args.provenance) if args.provenance else None)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
