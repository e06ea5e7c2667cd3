"""Read hear-dual checkpoints: one ONNX file, the torch inference graph, spec embedded in its metadata.

Reading parses protobuf and copies tensors with onnx.numpy_helper; nothing in a checkpoint is ever
executed or unpickled. A file either yields a complete, validated Checkpoint or raises CheckpointError.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from hear_dual import checkpoints
from hear_dual.spec import Spec, SpecError

FORMAT_VERSION = "1"
META_FORMAT = "hear_dual.format"
META_SPEC = "hear_dual.spec"
META_SPEC_VERSION = "hear_dual.spec_version"
META_SPEC_SHA256 = "hear_dual.spec_sha256"
# Optional: where the weights came from (JSON). Converted: source, version, file, sha256, licence, dropped
# tensors; trained: recipe, seed, steps, data, teacher and its sha256, licence.
META_PROVENANCE = "hear_dual.provenance"
GRAPH_INPUT = "audio"
GRAPH_OUTPUT = "timestamp_embeddings"
# A stored frontend constant may differ from this machine's recomputation by float64 rounding only: numpy's
# sin, cos, log10 and power round differently per instruction set (SPEC section 7). Relative to the
# constant's largest magnitude; measured across AVX-512, AVX2 and SSE4.2 dispatch: 3.7e-15.
CONSTANT_RTOL = {"float64": 1e-12, "float32": 2.0 * float(np.finfo(np.float32).eps)}


class CheckpointError(ValueError):
    """The file is not a usable hear-dual checkpoint; the message names the file and the problem."""


@dataclass(frozen=True)
class Checkpoint:
    path: str
    spec: Spec
    params: dict[str, np.ndarray]      # canonical layouts (conv1d weight OIW), float32
    constants: dict[str, np.ndarray]   # the file's frontend.dft and frontend.mel: what every backend multiplies by
    model_bytes: bytes                 # the ONNX graph, for onnxruntime
    sha256: str
    provenance: dict | None = None     # where converted or trained weights came from (META_PROVENANCE)


def resolve_path(model_file_path) -> str:
    """"" -> the shipped default; a shipped model's name (or a converted one's, once converted) -> its file; any
    other path as it is. Converting on first use is hear_dual.weights.resolve's, one level up."""
    if model_file_path is None or model_file_path == "":
        return checkpoints.shipped_path()
    if not isinstance(model_file_path, (str, os.PathLike)):
        raise TypeError(f"model_file_path must be a str or path, got {type(model_file_path).__name__}")
    path = os.fspath(model_file_path)
    if not os.path.exists(path) and checkpoints.canonical_name(path):   # "crepe-tiny", "compact": a model name
        return checkpoints.path(path)
    return path


def constant_deviation(stored: np.ndarray, computed: np.ndarray) -> float:
    """max |stored - computed| relative to max |computed|, in float64."""
    diff = np.abs(stored.astype(np.float64) - computed.astype(np.float64)).max()
    return float(diff / max(float(np.abs(computed).max()), np.finfo(np.float64).tiny))


def read_checkpoint(model_file_path="") -> Checkpoint:
    import onnx
    from onnx import numpy_helper

    from hear_dual.audio import frontend_constants

    path = resolve_path(model_file_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")

    def fail(problem: str):
        raise CheckpointError(f"{path}: {problem}")

    if not os.path.isfile(path):
        fail("is not a regular file (expected a hear-dual .onnx checkpoint)")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        fail("is empty (expected a hear-dual .onnx checkpoint)")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises several types on garbage
        fail(f"is not an ONNX model ({type(e).__name__}: {e})")

    meta = {p.key: p.value for p in model.metadata_props}
    if META_SPEC not in meta:
        fail(f"is not a hear-dual checkpoint: metadata key {META_SPEC!r} is missing")
    if meta.get(META_FORMAT) != FORMAT_VERSION:
        fail(f"unsupported checkpoint format {meta.get(META_FORMAT)!r}; expected {FORMAT_VERSION!r}")
    try:
        spec = Spec.from_json(meta[META_SPEC])
    except SpecError as e:
        fail(f"embedded spec is invalid: {e}")
    if meta.get(META_SPEC_SHA256) != spec.sha256:
        fail(f"embedded spec hash {meta.get(META_SPEC_SHA256)!r} does not match the spec ({spec.sha256})")
    if meta.get(META_SPEC_VERSION) != spec.version:
        fail(f"metadata spec_version {meta.get(META_SPEC_VERSION)!r} differs from the spec's {spec.version!r}")
    provenance = None
    if META_PROVENANCE in meta:
        try:
            provenance = json.loads(meta[META_PROVENANCE])
        except json.JSONDecodeError as e:
            fail(f"metadata {META_PROVENANCE!r} is not valid JSON: {e}")
        if not isinstance(provenance, dict):
            fail(f"metadata {META_PROVENANCE!r} must be a JSON object, got {type(provenance).__name__}")

    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if inputs != [GRAPH_INPUT] or outputs != [GRAPH_OUTPUT]:
        fail(f"graph must map {GRAPH_INPUT!r} to {GRAPH_OUTPUT!r}, found inputs {inputs} and outputs {outputs}")

    tensors = {}
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            fail(f"initializer {init.name!r} uses external data, which hear-dual never writes or reads")
        tensors[init.name] = init

    constants = frontend_constants(spec)
    expected = dict(spec.parameter_shapes) | {name: c.shape for name, c in constants.items()}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        fail(f"missing parameters {missing}")
    # The exporter keeps small constants as Constant nodes, so every initializer is a named tensor.
    extra = sorted(n for n in tensors if n not in expected)
    if extra:
        fail(f"unexpected parameters {extra} for spec {spec.name!r}")

    params = {}
    for name, shape in expected.items():
        want = constants[name].dtype if name in constants else np.dtype(np.float32)
        if tensors[name].data_type != onnx.helper.np_dtype_to_tensor_dtype(want):
            type_name = onnx.TensorProto.DataType.Name(tensors[name].data_type)
            fail(f"parameter {name!r} has type {type_name}, expected {want.name}")
        array = numpy_helper.to_array(tensors[name])
        if array.shape != tuple(shape):
            fail(f"parameter {name!r} has shape {array.shape}, expected {tuple(shape)}")
        if not np.isfinite(array).all():
            fail(f"parameter {name!r} has {int((~np.isfinite(array)).sum())} non-finite values")
        params[name] = array
    stored = {name: params.pop(name) for name in constants}
    for name, array in stored.items():
        deviation = constant_deviation(array, constants[name])
        bound = CONSTANT_RTOL[spec.frontend["precision"]]
        if deviation > bound:
            fail(f"{name!r} differs from the constant the spec defines by {deviation:.3g} relative (more than "
                 f"{bound:g}, the bound for rounding on another CPU); the graph would not match the spec")
        array.setflags(write=False)
    for name, array in params.items():
        if name.endswith("running_var") and (array < 0).any():
            fail(f"parameter {name!r} has negative variances")

    return Checkpoint(path=path, spec=spec, params=params, constants=stored, model_bytes=data,
                      sha256=hashlib.sha256(data).hexdigest(), provenance=provenance)
