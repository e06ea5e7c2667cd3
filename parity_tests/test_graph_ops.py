"""The spec 1.3 ops (conv2d, maxpool2d, reduce, concat, add, dense, channel-last flatten, pad and batch norm on
maps) and the patch frontend, through every backend, on two small models that use them all: one embedding per
patch (patches centred on their timestamps) and one per frame (patches tiling the clip). torch, TensorFlow, the
checkpoint graph in ONNX Runtime, tf2onnx's graph and the float64 reference meet the gate on every generated signal
class, timestamps identical; the checkpoint is written without any framework and reads back."""

import numpy as np
import pytest
from tiers import tiers

import hear_dual.reference as reference
from hear_dual.checkpoint import read_checkpoint
from hear_dual.parity import NATIVE, Backend, agreement, input_batch
from hear_dual.signals import SIGNAL_KINDS
from hear_dual.spec import Spec

FRONTEND = {"type": "mel_patches", "window": "hann_periodic", "win_length": 512, "hop_length": 256, "n_fft": 512,
            "n_mels": 32, "f_min": 0.0, "f_max": 8000.0, "mel_scale": "slaney", "mel_norm": "slaney",
            "precision": "float64", "compression": {"log": "log10", "scale": 10000, "offset": 1, "quantize": "float16"}}


def bn(name, channels, **more):
    return {"name": name, "op": "batchnorm", "channels": channels, "eps": 0.001, **more}


def per_patch_spec() -> Spec:
    """Every 1.3 op, and the graph: a residual add, a concat of three branches, reductions both ways, a dense head."""
    encoder = [
        bn("input_bn", 1),
        {"name": "a", "op": "conv2d", "in_channels": 1, "out_channels": 6, "kernel_size": [5, 3], "stride": [1, 1],
         "padding": [[2, 2], [1, 1]]},
        {"name": "a_relu", "op": "relu"},
        {"name": "b", "op": "conv2d", "in_channels": 6, "out_channels": 8, "kernel_size": [3, 3], "stride": [2, 2],
         "padding": [[0, 1], [1, 0]]},
        bn("b_bn", 8),
        {"name": "b_pool", "op": "maxpool2d", "kernel_size": [2, 3], "stride": [2, 2]},
        {"name": "b_pad", "op": "pad", "left": 1, "right": 2},
        {"name": "c", "op": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": [3, 1], "stride": [1, 1],
         "padding": [[1, 1], [0, 0]]},
        {"name": "res", "op": "add", "inputs": ["c", "b_pad"]},
        {"name": "by_max", "op": "reduce", "axis": "freq", "kind": "max"},
        {"name": "by_mean", "op": "reduce", "axis": "freq", "kind": "mean", "input": "b_pad"},
        {"name": "cat", "op": "concat", "inputs": ["by_max", "by_mean"]},
        {"name": "cat_gelu", "op": "gelu", "approximate": "none"},
        {"name": "d", "op": "conv1d", "in_channels": 16, "out_channels": 12, "kernel_size": 3, "stride": 1,
         "dilation": 1},
        {"name": "d_max", "op": "reduce", "axis": "time", "kind": "max"},
        {"name": "d_mean", "op": "reduce", "axis": "time", "kind": "mean", "input": "d"},
        {"name": "map_flat", "op": "flatten", "order": "channel_last", "input": "b_pool"},
        {"name": "series_flat", "op": "flatten", "order": "channel_major", "input": "cat_gelu"},
        {"name": "vector", "op": "concat", "inputs": ["d_max", "d_mean", "map_flat", "series_flat"]},
        {"name": "fc", "op": "dense", "in_features": 12 + 12 + 8 * 7 * 7 + 16 * 10, "out_features": 20},
        bn("fc_bn", 20),
        {"name": "fc_act", "op": "gelu", "approximate": "tanh"},
    ]
    return Spec({"spec_version": "1.3", "name": "graph-ops-per-patch", "track": "main", "sample_rate": 16000,
                 "frontend": FRONTEND | {"patch_frames": 31, "patch_hop": 4}, "encoder": encoder,
                 "embedding": {"timestamp_embedding_size": 20, "scene_pooling": ["mean"], "scene_embedding_size": 20},
                 "parity": {"tolerance": 2e-05, "min_cosine": 0.99999999},
                 "license": {"code": "Apache-2.0", "weights": "CC-BY-4.0"}})


def per_frame_spec() -> Spec:
    encoder = [
        bn("input_bn", 1),
        {"name": "a", "op": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": [4, 5], "stride": [1, 2],
         "padding": [[1, 2], [0, 0]]},
        {"name": "a_relu", "op": "relu"},
        {"name": "a_max", "op": "reduce", "axis": "freq", "kind": "max"},
        {"name": "a_mean", "op": "reduce", "axis": "freq", "kind": "mean", "input": "a_relu"},
        # one channel, taps along time only, strided along freq (a gather of whole rows in tf_impl and the graph)
        {"name": "t", "op": "conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": [3, 1], "stride": [1, 3],
         "padding": [[1, 1], [0, 0]], "input": "input_bn"},
        {"name": "t_max", "op": "reduce", "axis": "freq", "kind": "max"},
        {"name": "cat", "op": "concat", "inputs": ["a_max", "a_mean", "t_max"]},
        {"name": "cat_pad", "op": "pad", "left": 2, "right": 2},
        {"name": "c", "op": "conv1d", "in_channels": 11, "out_channels": 6, "kernel_size": 5, "stride": 1,
         "dilation": 1},
        bn("c_bn", 6),
    ]
    return Spec({"spec_version": "1.3", "name": "graph-ops-per-frame", "track": "compact", "sample_rate": 16000,
                 "frontend": FRONTEND | {"patch_frames": 24, "patch_hop": 24}, "encoder": encoder,
                 "embedding": {"timestamp_embedding_size": 6, "scene_pooling": ["mean", "max"],
                               "scene_embedding_size": 12},
                 "parity": {"tolerance": 2e-05, "min_cosine": 0.99999999},
                 "license": {"code": "Apache-2.0", "weights": "CC-BY-4.0"}})


@pytest.fixture(scope="module", params=["per_patch", "per_frame"])
def graph_backends(request, tmp_path_factory):
    from hear_dual.export import calibrate_batchnorm, calibration_audio, seeded_parameters, write_checkpoint

    spec = {"per_patch": per_patch_spec, "per_frame": per_frame_spec}[request.param]()
    params = calibrate_batchnorm(spec, seeded_parameters(spec, 11), calibration_audio(spec, seconds=1.0))
    path = tmp_path_factory.mktemp(request.param) / f"{spec.name}.onnx"
    write_checkpoint(spec, params, str(path))
    return {name: Backend(name, str(path)) for name in NATIVE}, str(path), params


def test_the_checkpoint_reads_back_with_every_parameter(graph_backends):
    _, path, params = graph_backends
    checkpoint = read_checkpoint(path)
    assert checkpoint.params.keys() == params.keys()
    for name, array in params.items():
        assert np.array_equal(checkpoint.params[name], array), name


@pytest.mark.parametrize("kind", tiers(("white_noise", "chirp", "dc_offset"), SIGNAL_KINDS))
def test_every_backend_meets_the_gate_against_torch_and_float64(kind, graph_backends, with_tf2onnx):
    backends, path, _ = graph_backends
    backends = with_tf2onnx(backends, path)
    spec = backends["torch"].spec
    audio = input_batch(kind, 2, 11923, spec.sample_rate)
    ref_model = reference.load_model(path)
    want, want_t = reference.get_timestamp_embeddings(audio, ref_model)
    want_scene = reference.get_scene_embeddings(audio, ref_model)
    outputs = {name: backend.embed(audio) for name, backend in backends.items()}
    for name, (e, t, s) in outputs.items():
        assert e.shape == want.shape and np.array_equal(t, want_t), name
        for ref, got in ((want, e), (outputs["torch"][0], e), (want_scene, s)):
            gate = agreement(ref, got, spec.tolerance, spec.min_cosine)
            assert gate.passed, (name, kind, gate)
    if kind == "white_noise":     # the model is alive: its outputs vary over time and across dimensions
        assert want.std(axis=1).min() > 1e-3
