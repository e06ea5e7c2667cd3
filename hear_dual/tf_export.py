"""Export tf_impl's inference graph with tf2onnx: the TensorFlow side of the ONNX round trip.

Runs in its own process (`python -m hear_dual.tf_export --weights W --out O`); `export_tf_graph` does that.
The result carries the same metadata as a checkpoint plus `hear_dual.exporter = tf2onnx`, so
hear_dual.onnx_impl can run it. Before it is written it must (1) load in onnxruntime, (2) agree with
TensorFlow within the spec's tolerance, and (3) hold the checkpoint's weights bit for bit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

from hear_dual.audio import dft_fold, padded_input_length
from hear_dual.checkpoint import (
    FORMAT_VERSION,
    META_FORMAT,
    META_SPEC,
    META_SPEC_SHA256,
    META_SPEC_VERSION,
    read_checkpoint,
)
from hear_dual.extras import installed, missing_extra
from hear_dual.spec import CONV_OPS, Spec
from hear_dual.weights import resolve

META_EXPORTER = "hear_dual.exporter"


def weight_facts(spec: Spec, params: dict, constants: dict) -> list[tuple[tuple[str, ...], tuple[np.ndarray, ...]]]:
    """Sets of arrays a correct export may hold, each with the parameters the whole set accounts for.

    Grappler and tf2onnx fold constants: batch norm's scale = weight / sqrt(running_var + eps) and
    shift = bias - running_mean * scale become tensors of their own. IEEE float32 add, subtract, multiply,
    sqrt and divide are correctly rounded, so numpy's float32 results must match those bit for bit.
    tf_impl's convolutions multiply by one kernel tap at a time, so a kernel may be held as its taps (in any
    order: tap order is the parity tests' to check), or, for an in_channels = 1 conv, as one (taps, out) matrix;
    its frontend multiplies by the folded DFT, so the DFT may be held as its two folded halves.
    """
    from hear_dual.layout import to_tf_layout

    facts = [((name,), (array,)) for name, array in constants.items()]
    if "frontend.dft" in constants:         # log-mel only: waveform frames have no constants
        fold = dft_fold(constants["frontend.dft"])
        facts.append((("frontend.dft",), (fold.even, fold.odd)))
    facts += [((name,), (array,)) for name, array in params.items()]
    for layer in spec.layers:
        if layer.op in CONV_OPS:
            kernel = to_tf_layout(f"{layer.name}.weight", params[f"{layer.name}.weight"])
            taps = kernel.reshape(-1, *kernel.shape[-2:])      # conv1d kernel[k], conv2d kernel[p, q]; dense: itself
            facts.append(((f"{layer.name}.weight",), tuple(taps)))
            # an in_channels = 1 conv: every tap in one matmul, (K, out) or (Kt * Kf, out)
            facts.append(((f"{layer.name}.weight",), (kernel.reshape(-1, kernel.shape[-1]),)))
        if layer.op == "batchnorm":
            w, b = params[f"{layer.name}.weight"], params[f"{layer.name}.bias"]
            m, v = params[f"{layer.name}.running_mean"], params[f"{layer.name}.running_var"]
            scale = (w / np.sqrt(v + np.float32(layer.eps))).astype(np.float32)
            facts.append(((f"{layer.name}.weight", f"{layer.name}.running_var"), (scale,)))
            facts.append(((f"{layer.name}.bias", f"{layer.name}.running_mean"), ((b - m * scale).astype(np.float32),)))
    return facts


def _key(array: np.ndarray):
    squeezed = np.ascontiguousarray(np.squeeze(array))
    return squeezed.dtype.str, squeezed.shape, squeezed.tobytes()


def unaccounted_parameters(graph, spec: Spec, params: dict, constants: dict) -> list[str]:
    """Spec parameters (and frontend constants) that no initializer holds bit for bit, alone, folded or by tap."""
    from onnx import numpy_helper

    held = {_key(numpy_helper.to_array(init)) for init in graph.graph.initializer}
    accounted = set()
    for names, arrays in weight_facts(spec, params, constants):
        if all(_key(array) in held for array in arrays):
            accounted.update(names)
    wanted = list(constants) + list(params)
    return [name for name in wanted if name not in accounted]


def export(weights: str, out_path: str) -> None:
    import onnx
    import onnxruntime as ort
    import tf2onnx

    import hear_dual.tf_impl as tf_backend
    from hear_dual.tf_impl.model import tf

    checkpoint = read_checkpoint(resolve(weights))
    spec = checkpoint.spec
    model = tf_backend.load_model(checkpoint.path)
    if hasattr(model.frontend, "fft"):
        model.frontend.fft = False      # tf2onnx cannot convert an FFT: the folded matmul, the same sums (SPEC 3)
    # tf2onnx's back-to-back optimizer merges chains of casts as if every float type held more than the next: it turns
    # float32 -> float16 -> float64 into float32 -> float64, dropping a patch spec's float16 step (SPEC 3.3).
    import tf2onnx.optimizer

    tf2onnx.optimizer._optimizers.pop("remove_back_to_back", None)
    graph, _ = tf2onnx.convert.from_function(model.encode, input_signature=model.encode.input_signature,
                                             opset=18)
    missing = unaccounted_parameters(graph, spec, checkpoint.params, checkpoint.constants)
    if missing:
        raise RuntimeError(f"tf2onnx graph does not hold these weights bit for bit: {missing}")

    for key, value in {META_FORMAT: FORMAT_VERSION, META_SPEC: spec.to_json(), META_SPEC_VERSION: spec.version,
                       META_SPEC_SHA256: spec.sha256, META_EXPORTER: f"tf2onnx {tf2onnx.__version__}"}.items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name = "hear-dual (tf2onnx)"

    probe = np.random.default_rng(2).uniform(-1, 1, (3, padded_input_length(spec, 29))).astype(np.float32)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: probe})[0]
    want = model.encode(tf.constant(probe)).numpy()
    if got.shape != want.shape or np.abs(got - want).max() > spec.tolerance * max(1.0, np.abs(want).max()):
        raise RuntimeError("onnxruntime disagrees with TensorFlow on the tf2onnx graph")
    tmp = f"{out_path}.tmp{os.getpid()}"
    onnx.save(graph, tmp)
    os.replace(tmp, out_path)


def export_tf_graph(weights: str, out_path) -> str:
    """Run the tf2onnx export in a fresh process; returns out_path."""
    for module in ("tf2onnx", "tensorflow", "onnxruntime"):      # say what is missing here, not from the child
        if not installed(module):
            raise missing_extra(ModuleNotFoundError(name=module), "the tf2onnx graph (hear_dual.tf_export)")
    run = subprocess.run([sys.executable, "-m", "hear_dual.tf_export", "--weights", os.fspath(weights),
                          "--out", os.fspath(out_path)], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"tf2onnx export failed (exit {run.returncode}):\n{run.stderr[-4000:]}")
    return os.fspath(out_path)


def load_tf2onnx_model(path: str, providers=None):
    """An onnx_impl model running a tf2onnx graph written by this module."""
    import onnx

    from hear_dual.onnx_impl import OnnxModel

    graph = onnx.load(path)
    meta = {p.key: p.value for p in graph.metadata_props}
    if not meta.get(META_EXPORTER, "").startswith("tf2onnx"):
        raise ValueError(f"{path} is not a tf2onnx export written by hear_dual.tf_export")
    spec = Spec.from_json(meta[META_SPEC])
    return OnnxModel(spec, graph.SerializeToString(), providers)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hear_dual.tf_export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="", help="hear-dual checkpoint (default: the shipped one)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    export(args.weights, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
