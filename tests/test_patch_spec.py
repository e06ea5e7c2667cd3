"""Spec 1.3: the log-mel patch family, graph inputs and the 2-D ops (musicnn and its VGG baselines).

Backends against float64 and against musicnn's own code are in parity_tests/test_graph_ops.py and
parity_tests/test_musicnn.py; this file checks the rules, the derived geometry against librosa's own formulas and
musicnn's extractor, and that 1.0 to 1.2 specs and checkpoints are untouched.
"""

import copy
import hashlib

import numpy as np
import pytest

import hear_dual.checkpoints
from hear_dual.audio import embedding_plan, frame_span, num_tiles, num_timestamps, timestamps_ms
from hear_dual.checkpoint import read_checkpoint
from hear_dual.spec import Spec, SpecError

# The files as they were committed before spec 1.3 existed (sha256 of the bytes), and their specs' hashes.
PRE_1_3_FILES = {
    "base": "dff63208f0c89b0d90c32f42d3a2968b3c721ac3b66b6a38cb1ce7fb3897e8a9",
    "seeded": "572c300306db44d1227f1f2ea7eef99475f84d9593b7c9edc9c003634f72a030",
    "compact": "62ef039d77a56e39dbf0e4ee3c37a5d36e0fc569655807436a12665359876bd8",
    "compact-seeded": "b2624816649f428cb1fde8500919b730cb975ed4202086177671900104c1c135",
    "randproj": "c5d470375a8386ea91eb9928cfa64187dc3c3c0b5d1d227530aa453f0993b510",
    "crepe-tiny": "de0d2b2019a3e04f5890d7c64203b414c2ad7e8148496e0a7af9466246cc95cb",
}
PRE_1_3_SPECS = {
    "hear-dual-base": "e89c7495c22957a808198389e55fb9236fdc96e4ae2ac46b649880c54f81863b",
    "hear-dual-compact": "78c3d18f4ef2f89998e44d8fef058bcdd720a9882fccb96575a4a4726305ddf5",
    "hear-dual-randproj": "c8b94dba857f8608a00b7d2143978a460ff25fe249bde6ba7b27e2e10a579b25",
    "hear-dual-crepe-tiny": "965319f4af40ead30d34b3f42482cc9fe20e8b6e36bd418678828ac1558dcc88",
    "hear-dual-crepe-full": "9f4b97f909b4f39576165b670424438809bb191bb9e5dfb609a4c36357190718",
}
MUSICNN, VGG = "hear-dual-musicnn-mtt", "hear-dual-vgg-mtt"


@pytest.fixture(scope="module")
def musicnn():
    return Spec.builtin(MUSICNN)


@pytest.fixture(scope="module")
def vgg():
    return Spec.builtin(VGG)


def layer(raw: dict, name: str) -> dict:
    return next(d for d in raw["encoder"] if d["name"] == name)


def edited(spec, edit):
    raw = copy.deepcopy(spec.raw)
    edit(raw)
    return raw


@pytest.mark.parametrize("name", sorted(PRE_1_3_FILES))
def test_pre_1_3_checkpoints_keep_their_bytes_and_meaning(name):
    path = hear_dual.checkpoints.path(name)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == PRE_1_3_FILES[name]
    checkpoint = read_checkpoint(path)
    assert checkpoint.spec.version in ("1.0", "1.1", "1.2") and not checkpoint.spec.is_patched


@pytest.mark.parametrize("variant", sorted(PRE_1_3_SPECS))
def test_pre_1_3_specs_keep_their_hashes_and_graphs_read_as_before(variant):
    spec = Spec.builtin(variant)
    assert spec.sha256 == PRE_1_3_SPECS[variant]
    # the graph walk of 1.3 reads a 1.0 to 1.2 encoder as the chain it always was
    names = ["frontend"] + [layer.name for layer in spec.layers]
    for previous, layer in zip(names, spec.layers):
        expected = (previous, layer.source) if layer.op == "skip_conv1d" else (previous,)
        assert spec.layer_inputs[layer.name] == expected


def test_musicnn_and_vgg_derive_what_musicnn_computes(musicnn, vgg):
    # parameters: musicnn's conv and batch-norm tensors (its tagging back-end is not in the embedding)
    assert musicnn.parameter_count == (7 * 38 * 204 + 7 * 67 * 204 + (128 + 64 + 32) * 51 + 7 * 561 * 64
                                       + 2 * 7 * 64 * 64 + 204 * 2 + 51 * 3 + 64 * 3 + 4 * (1 + 204 * 2 + 51 * 3
                                                                                            + 64 * 3))
    assert vgg.parameter_count == 9 * 128 + 4 * 9 * 128 * 128 + 5 * 128 + 4 * (1 + 5 * 128)
    assert musicnn.output_shape == (753, 187) and musicnn.per_frame and musicnn.hop_ms == 16.0
    assert vgg.output_shape == (256,) and not vgg.per_frame and vgg.hop_ms == 48.0
    # VGG's pool shapes: (time, freq) 187 x 96 -> 92 x 48 -> 46 x 24 -> 23 x 12 -> 11 x 6 -> 2 x 1
    pools = {layer.name: shape for layer, shape in zip(vgg.layers, vgg.frame_shapes[1:]) if layer.op == "maxpool2d"}
    assert [pools[f"pool{i}"] for i in range(1, 6)] == [(128, 92, 48), (128, 46, 24), (128, 23, 12), (128, 11, 6),
                                                         (128, 2, 1)]
    # 2.8 GFLOP per 3 s patch for musicnn, 1.77 for the vgg, as counted by hand from the layer shapes
    assert abs(musicnn.flops_per_second * 187 * 256 / 16000 - 2.93e9) < 0.05e9
    assert abs(vgg.flops_per_second * 3 * 256 / 16000 - 1.78e9) < 0.03e9
    assert musicnn.receptive_field_samples == vgg.receptive_field_samples == 186 * 256 + 512


@pytest.mark.parametrize("n", [1, 255, 256, 4000, 47871, 47872, 48000, 100000])
def test_timestamps_follow_librosa_frames_and_musicnn_patches(n, musicnn, vgg):
    librosa = pytest.importorskip("librosa")
    frames = librosa.util.frame(np.zeros(n + 512), frame_length=512, hop_length=256).shape[1]   # centred, padded
    assert num_timestamps(musicnn, n) == frames == n // 256 + 1
    assert np.array_equal(timestamps_ms(musicnn, n), (np.arange(frames) * 16.0).astype(np.float32))
    assert num_timestamps(vgg, n) == n // 768 + 1
    assert np.array_equal(timestamps_ms(vgg, n), (np.arange(n // 768 + 1) * 48.0).astype(np.float32))
    # tiles: musicnn's extractor cuts 187-frame patches from frame 0; the last is zero-padded here
    assert num_tiles(musicnn, n) == -(-frames // 187)
    plan = embedding_plan(musicnn, n, 2)
    assert plan.n_outputs == 187 * num_tiles(musicnn, n) and plan.n_timestamps == frames and plan.tile == 187
    units = [c for group in plan.steps for c in group]
    assert [c.out_start for c in units] == list(range(0, plan.n_outputs, 187))
    for t, c in enumerate(units):      # each tile's audio: frames [187 t, 187 t + 187), centred windows
        assert c.pad_left + (c.src_stop - c.src_start) + c.pad_right == 186 * 256 + 512
        assert c.src_start - c.pad_left == 187 * t * 256 - 256


def test_frame_span_pads_what_lies_outside_the_clip(musicnn):
    assert frame_span(musicnn, 0, 1, 1000) == frame_span(musicnn, 0, 1, 1000)
    whole = frame_span(musicnn, -93, 94, 1000)            # a patch centred on frame 0
    assert (whole.src_start, whole.src_stop, whole.pad_left) == (0, 1000, 93 * 256 + 256)
    assert whole.pad_left + 1000 + whole.pad_right == 186 * 256 + 512
    past = frame_span(musicnn, 50, 60, 1000)               # entirely past the clip: zeros only
    assert (past.src_start, past.src_stop, past.pad_left + past.pad_right) == (0, 0, 9 * 256 + 512)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(spec_version="1.2"), "mel_patches' needs spec_version 1.3"),
    (lambda r: r["frontend"].update(patch_hop=3), "patch_hop \\(3\\) must equal patch_frames"),
    (lambda r: r["encoder"][1].update(in_channels=2), "in_channels 2 but its input gives 1"),
    (lambda r: r["encoder"][1].update(input="temporal32"), "input 'temporal32' is neither 'frontend' nor an earlier"),
    (lambda r: r["encoder"][1].update(input="nowhere"), "input 'nowhere' is neither"),
    (lambda r: r["encoder"][-1]["inputs"].pop(), "never read"),
    (lambda r: r["encoder"][-1]["inputs"].append("input_bn"), "differ in channels only"),
    (lambda r: layer(r, "midend2_res").update(inputs=["midend2_bn", "frontend_features"]), "one shape"),
    (lambda r: layer(r, "timbral74_pool").update(axis="time"), "reduce over time"),
    (lambda r: r["encoder"][1].update(kernel_size=[7, 97]), "no samples left"),
    (lambda r: r["embedding"].update(timestamp_embedding_size=752, scene_embedding_size=1504), "outputs 753"),
    (lambda r: r["frontend"].update(win_length=511, n_fft=511), "multiple of"),
    (lambda r: r["frontend"]["compression"].update(quantize="float8"), "compression/quantize"),
])
def test_patch_rules(musicnn, edit, message):
    with pytest.raises(SpecError, match=message):
        Spec(edited(musicnn, edit))


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["frontend"].update(patch_frames=188), "must be odd"),
    (lambda r: r["encoder"].pop(), "must be \\(channels, 187\\)"),
    (lambda r: r["encoder"][-1].update(order="row_major"), "order"),
])
def test_one_per_patch_rules(vgg, edit, message):
    with pytest.raises(SpecError, match=message):
        Spec(edited(vgg, edit))


def test_1_3_features_are_refused_where_they_do_not_belong():
    base = Spec.builtin("hear-dual-base")
    with pytest.raises(SpecError, match="mel_scale 'slaney' needs spec_version 1.3"):
        Spec(edited(base, lambda r: r["frontend"].update(mel_scale="slaney")))
    assert Spec(edited(base, lambda r: r["frontend"].update(mel_scale="slaney") or r.update(spec_version="1.3")))
    two_d = {"name": "c2", "op": "conv2d", "in_channels": 64, "out_channels": 8, "kernel_size": [1, 1],
             "stride": [1, 1], "padding": [[0, 0], [0, 0]]}
    with pytest.raises(SpecError, match="op 'conv2d' needs spec_version 1.3"):
        Spec(edited(base, lambda r: r["encoder"].insert(1, two_d)))
    with pytest.raises(SpecError, match="op 'conv2d' needs a framed frontend"):
        Spec(edited(base, lambda r: r.update(spec_version="1.3") or r["encoder"].insert(1, two_d)))
    with pytest.raises(SpecError, match="field 'input' needs spec_version 1.3 and a framed frontend"):
        Spec(edited(base, lambda r: r.update(spec_version="1.3") or r["encoder"][2].update(input="frontend")))
    tiny = Spec.builtin("hear-dual-crepe-tiny")
    with pytest.raises(SpecError, match="field 'input' needs spec_version 1.3"):
        Spec(edited(tiny, lambda r: r["encoder"][1].update(input="pad1")))
    with pytest.raises(SpecError, match="channel_last"):      # a 1.1 flatten order
        Spec(edited(tiny, lambda r: r["encoder"][-1].update(order="channel_last")))


def test_a_framed_graph_reads_any_earlier_point_and_keeps_only_what_is_read_later(musicnn):
    assert musicnn.layer_inputs["timbral77"] == ("input_bn",)
    assert musicnn.layer_inputs["midend2_res"] == ("midend2_bn", "midend1_bn")
    assert musicnn.layer_inputs["features"] == ("frontend_features", "midend1_bn", "midend2_res", "midend3_res")
    # a point is kept until its last reader, and only when a reader is not the layer right after it
    assert musicnn.kept_points["input_bn"] == "temporal32"
    assert musicnn.kept_points["frontend_features"] == "features"
    assert "timbral74" not in musicnn.kept_points
