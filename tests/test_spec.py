"""Spec validation: the shipped specs pass, each kind of broken spec fails with a message naming the field."""

import copy
import json

import pytest

from hear_dual.spec import BUILTIN_VARIANTS, Spec, SpecError, load_schema


@pytest.fixture
def raw(spec):
    return copy.deepcopy(spec.raw)


@pytest.mark.parametrize("variant", BUILTIN_VARIANTS)
def test_builtin_specs_validate(variant):
    spec = Spec.builtin(variant)
    assert spec.name == variant
    assert spec.to_json() == Spec.from_json(spec.to_json()).to_json()


def test_schema_is_a_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_base_model_meets_the_design_bounds(spec):
    assert spec.sample_rate == 16000
    assert spec.hop_ms <= 50 and spec.hop_samples * 1000 % spec.sample_rate == 0  # whole samples, whole ms
    assert spec.receptive_field_samples >= 0.5 * spec.sample_rate
    assert 256 <= spec.timestamp_embedding_size <= 2048
    assert spec.scene_embedding_size <= 6144
    assert spec.flops_per_second <= 0.5e9
    assert spec.tolerance <= 2e-5


def test_derived_geometry_matches_a_hand_count(spec):
    # conv strides 1,2,1,2,1,1,1,1 -> 4; frontend hop 160 -> 640 samples
    assert spec.total_stride == 4 and spec.hop_samples == 640
    # RF frames: 1 + 4*1 + 2*1 + 2*2 + 2*2 + 2*4 + 2*2*4 + 2*4*4 + 0 = 71
    assert spec.receptive_field_frames == 71
    assert spec.receptive_field_samples == 160 * 70 + 480
    assert spec.pad_left == spec.receptive_field_samples // 2


@pytest.mark.parametrize("variant", ["hear-dual-base", "hear-dual-compact"])
def test_parameter_count_matches_the_shapes(variant):
    spec, expected = Spec.builtin(variant), 0
    for layer in spec.layers:
        if layer.op in ("conv1d", "skip_conv1d"):
            expected += layer.out_channels * (layer.in_channels * layer.kernel_size + 1)
        elif layer.op == "batchnorm":
            expected += 4 * layer.channels
    assert spec.parameter_count == expected


def _break(raw, path, value):
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


@pytest.mark.parametrize("path, value, message", [
    (("spec_version",), "9.9", "unsupported spec_version"),
    (("sample_rate",), 8000, "sample_rate"),
    (("frontend", "window"), "hamming", "frontend/window"),
    (("frontend", "log_offset"), KeyError, "log_offset"),
    (("frontend", "precision"), "float16", "frontend/precision"),
    (("frontend", "n_fft"), 512, "n_fft"),
    (("frontend", "hop_length"), 170, "multiple"),
    (("frontend", "f_max"), 9000.0, "f_max"),
    (("encoder", 1, "op"), "conv2d", "encoder/1"),
    (("encoder", 1, "padding"), "same", "encoder/1"),
    (("encoder", 1, "in_channels"), 65, "in_channels"),
    (("encoder", 4, "dilation"), 2, "stride and dilation"),
    (("encoder", 3, "approximate"), "sigmoid", "encoder/3"),
    (("encoder", 2, "eps"), 0, "encoder/2"),
    (("encoder", 2, "name"), "conv0", "duplicate"),
    (("encoder", 2, "name"), "frontend", "encoder/2/name"),
    (("embedding", "timestamp_embedding_size"), 256, "timestamp_embedding_size"),
    (("embedding", "scene_embedding_size"), 512, "scene_embedding_size"),
    (("embedding", "scene_pooling"), ["median"], "scene_pooling"),
    (("parity", "tolerance"), 1e-3, "parity/tolerance"),
    (("extra_field",), 1, "extra_field"),
])
def test_broken_specs_are_rejected_with_the_field_named(raw, path, value, message):
    with pytest.raises(SpecError, match=message):
        Spec(_break(raw, path, value))


def test_empty_mel_band_is_rejected(raw):
    # 241 bins 33 Hz apart cannot give 200 non-empty bands between 60 Hz and 7.8 kHz
    raw["frontend"]["n_mels"] = raw["encoder"][0]["channels"] = raw["encoder"][1]["in_channels"] = 200
    with pytest.raises(SpecError, match="contain no DFT bin"):
        Spec(raw)


def test_invalid_json_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        Spec.from_json("{not json")
    with pytest.raises(SpecError, match="JSON object"):
        Spec.from_json(json.dumps([1, 2]))


def test_compact_track_limits_width(raw):
    raw["track"] = "compact"
    with pytest.raises(SpecError, match="compact"):
        Spec(raw)


def test_layers_copy_and_pickle(spec):
    """Layer reads its op fields through __getattr__; copy and pickle (which probe attributes before
    __init__ state exists) once recursed forever."""
    import copy
    import pickle

    layer = spec.layers[1]
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone == layer and clone.kernel_size == layer.kernel_size


# --- skip_conv1d (1.2) ------------------------------------------------------------------------------------

def _skip_spec(**skip):
    """A small 1.2 log-mel spec: conv0 (k3, s2) and conv1 (k5), then a skip_conv1d given by `skip`."""
    import copy

    raw = copy.deepcopy(Spec.builtin("hear-dual-compact").raw)
    layer = {"name": "skip", "op": "skip_conv1d", "source": "frontend", "in_channels": 64, "out_channels": 4,
             "kernel_size": 5, "stride": 2} | skip
    raw["encoder"] = [
        {"name": "conv0", "op": "conv1d", "in_channels": 64, "out_channels": 16, "kernel_size": 3, "stride": 2,
         "dilation": 1},
        {"name": "conv1", "op": "conv1d", "in_channels": 16, "out_channels": 8, "kernel_size": 5, "stride": 1,
         "dilation": 1},
        layer]
    raw["embedding"].update(timestamp_embedding_size=8 + layer["out_channels"],
                            scene_embedding_size=2 * (8 + layer["out_channels"]))
    return raw


@pytest.mark.parametrize("source, in_channels, kernel_size, stride", [
    ("frontend", 64, 5, 2), ("frontend", 64, 1, 2), ("conv0", 16, 3, 1), ("conv0", 16, 1, 1)])
def test_a_skip_window_is_centred_on_its_timestamp(source, in_channels, kernel_size, stride):
    """Section 4's crop, checked against pad_left (from the receptive field): the centre sample of the skip's
    window t, in padded-chunk coordinates, is the timestamp's own sample pad_left + t * hop_samples."""
    spec = Spec(_skip_spec(source=source, in_channels=in_channels, kernel_size=kernel_size, stride=stride))
    crop, hop, win = spec.skip_crops["skip"], spec.frontend["hop_length"], spec.frontend["win_length"]
    for t in range(5):
        if source == "frontend":        # log-mel frame f is centred on sample hop f + win / 2
            centre = hop * (stride * t + crop + (kernel_size - 1) / 2) + win / 2
        else:                           # conv0's output u sees frames 2u .. 2u + 2, centred on frame 2u + 1
            centre = hop * (2 * (stride * t + crop + (kernel_size - 1) / 2) + 1) + win / 2
        assert centre == spec.pad_left + t * spec.hop_samples
    assert spec.receptive_field_frames == 1 + 2 + 2 * 4            # the skip leaves it as the stream's
    assert spec.timestamp_embedding_size == 8 + 4


def test_the_compact_skip_reads_the_log_mel_frames_around_each_timestamp():
    spec = Spec.builtin("hear-dual-compact")
    assert spec.version == "1.2" and spec.skip_crops == {"spectrum": 33}
    assert spec.parameter_shapes["spectrum.weight"] == (8, 64, 5) and spec.parameter_count == 260_640
    # log-mel frame 33 + 2 = 35 is centred on sample 160 * 35 + 240 = 5840 = pad_left, timestamp 0
    assert 160 * (33 + 2) + 240 == spec.pad_left


@pytest.mark.parametrize("skip, version, message", [
    ({}, "1.1", "needs spec_version 1.2"),
    ({"source": "skip"}, "1.2", "neither 'frontend' nor an earlier layer"),
    ({"source": "nowhere"}, "1.2", "neither 'frontend' nor an earlier layer"),
    ({"in_channels": 16}, "1.2", "in_channels 16 but its source 'frontend' gives 64"),
    ({"stride": 1}, "1.2", "stride 1 but the stream advances 2 steps"),
    ({"kernel_size": 4}, "1.2", "cannot be centred"),
    ({"kernel_size": 13}, "1.2", "cannot be centred"),
    ({"source": "conv0", "in_channels": 16, "kernel_size": 2, "stride": 1}, "1.2", "cannot be centred"),
])
def test_a_bad_skip_is_refused_with_its_reason(skip, version, message):
    raw = _skip_spec(**skip)
    raw["spec_version"] = version
    with pytest.raises(SpecError, match=message):
        Spec(raw)


def test_a_skip_needs_the_log_mel_frontend():
    import copy

    raw = copy.deepcopy(Spec.builtin("hear-dual-crepe-tiny").raw)
    raw["spec_version"] = "1.2"
    raw["encoder"].insert(1, {"name": "skip", "op": "skip_conv1d", "source": "frontend", "in_channels": 1,
                              "out_channels": 1, "kernel_size": 1, "stride": 1})
    with pytest.raises(SpecError, match="needs the log_mel frontend"):
        Spec(raw)


@pytest.mark.parametrize("variant", sorted(BUILTIN_VARIANTS))
def test_the_gemm_limits_products_are_the_models_arithmetic(variant):
    """Spec.matmuls (what benchmarks/run.py times as the GEMM limit) lists the products that flops_per_second
    counts layer by layer: they make all of it but the element-wise work (under 1% in every shipped model)."""
    spec = Spec.builtin(variant)
    products = spec.matmuls()
    flops = sum(2 * p["rows"] * p["k"] * p["n"] * p["count"] for p in products)
    assert 0.99 * spec.flops_per_second <= flops <= spec.flops_per_second, variant
    assert {p["layer"] for p in products} >= {layer.name for layer in spec.layers if layer.op in
                                               ("conv1d", "skip_conv1d", "conv2d", "dense")}
