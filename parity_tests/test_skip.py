"""skip_conv1d (SPEC section 4, 1.2) through every backend, on a model that reads the log-mel and the output
of a gelu after a strided conv: torch, TensorFlow, the checkpoint graph in onnxruntime, tf2onnx's graph and the
float64 reference meet the gate on every generated signal class, and the checkpoint exports, reads back and
names the op's parameters."""

import numpy as np
import pytest
from tiers import tiers

import hear_dual.reference as reference
from hear_dual.checkpoint import read_checkpoint
from hear_dual.parity import NATIVE, Backend, agreement, input_batch
from hear_dual.signals import SIGNAL_KINDS
from hear_dual.spec import Spec


def two_skip_spec() -> Spec:
    raw = Spec.builtin("hear-dual-compact").raw
    raw["name"] = "skip-test"
    raw["encoder"] = [
        {"name": "input_norm", "op": "batchnorm", "channels": 64, "eps": 1e-05},
        {"name": "conv0", "op": "conv1d", "in_channels": 64, "out_channels": 32, "kernel_size": 3, "stride": 2,
         "dilation": 1},
        {"name": "act0", "op": "gelu", "approximate": "none"},
        {"name": "conv1", "op": "conv1d", "in_channels": 32, "out_channels": 24, "kernel_size": 5, "stride": 1,
         "dilation": 1},
        {"name": "from_act0", "op": "skip_conv1d", "source": "act0", "in_channels": 32, "out_channels": 4,
         "kernel_size": 3, "stride": 1},
        {"name": "norm1", "op": "batchnorm", "channels": 28, "eps": 1e-05},
        {"name": "from_logmel", "op": "skip_conv1d", "source": "frontend", "in_channels": 64, "out_channels": 4,
         "kernel_size": 5, "stride": 2}]
    raw["embedding"].update(timestamp_embedding_size=32, scene_embedding_size=64)
    return Spec(raw)


@pytest.fixture(scope="module")
def skip_backends(tmp_path_factory):
    from hear_dual.export import calibrate_batchnorm, calibration_audio, seeded_parameters, write_checkpoint

    spec = two_skip_spec()
    params = calibrate_batchnorm(spec, seeded_parameters(spec, 7), calibration_audio(spec))
    path = tmp_path_factory.mktemp("skip") / "skip.onnx"
    write_checkpoint(spec, params, str(path))
    return {name: Backend(name, str(path)) for name in NATIVE}, str(path), params


def test_the_checkpoint_reads_back_with_the_skip_parameters(skip_backends):
    _, path, params = skip_backends
    checkpoint = read_checkpoint(path)
    assert checkpoint.spec.skip_crops == {"from_act0": 1, "from_logmel": 3}
    for name in ("from_act0.weight", "from_act0.bias", "from_logmel.weight", "from_logmel.bias"):
        assert np.array_equal(checkpoint.params[name], params[name])


@pytest.mark.parametrize("kind", tiers(("white_noise", "chirp", "impulse_train"), SIGNAL_KINDS))
def test_every_backend_meets_the_gate_against_torch_and_float64(kind, skip_backends, with_tf2onnx):
    backends, path, _ = skip_backends
    backends = with_tf2onnx(backends, path)
    spec = backends["torch"].model.spec
    audio = input_batch(kind, 3, 21923, spec.sample_rate)
    ref_model = reference.load_model(path)
    want, want_t = reference.get_timestamp_embeddings(audio, ref_model)
    outputs = {name: backend.embed(audio) for name, backend in backends.items()}
    want_scene = reference.pool_scene(want, spec.scene_pooling)
    for name, (e, t, s) in outputs.items():
        assert e.shape == want.shape and np.array_equal(t, want_t), name
        for ref, got in ((want, e), (outputs["torch"][0], e), (want_scene, s)):
            gate = agreement(ref, got, spec.tolerance, spec.min_cosine)
            assert gate.passed, (name, kind, gate)
    if kind == "white_noise":       # both skips' channels carry signal, so the gate above saw them
        assert want[..., 24:28].std(axis=1).min() > 1e-3 and want[..., 28:].std(axis=1).min() > 1e-3
