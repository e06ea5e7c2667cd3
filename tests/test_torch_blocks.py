"""What torch_impl does for speed keeps its results: blocks of any size (including a last, uneven one), in-place
ReLU and batch norm (never over a point a later layer reads, a flatten's view of it included), and autograd
through the accumulating products (training runs the encoder with gradients)."""

import numpy as np
import pytest
import torch

import hear_dual.torch_impl.model as tm
from hear_dual.audio import padded_input_length
from hear_dual.export import seeded_parameters
from hear_dual.parity import input_batch
from hear_dual.spec import Spec
from hear_dual.torch_impl import load_model

FRONTEND = {"type": "mel_patches", "window": "hann_periodic", "win_length": 512, "hop_length": 256, "n_fft": 512,
            "n_mels": 32, "f_min": 0.0, "f_max": 8000.0, "mel_scale": "slaney", "mel_norm": "slaney",
            "precision": "float64", "compression": {"log": "log10", "scale": 10000, "offset": 1, "quantize": "float16"}}


def flatten_then_relu_spec() -> Spec:
    """A kept point ("a", read again by a_max) flattened, then a ReLU on the flatten: a view of the kept point."""
    encoder = [
        {"name": "a", "op": "conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3], "stride": [1, 1],
         "padding": [[1, 1], [1, 1]]},
        {"name": "a_flat", "op": "flatten", "order": "channel_major"},
        {"name": "a_flat_relu", "op": "relu"},
        {"name": "fc", "op": "dense", "in_features": 2 * 9 * 32, "out_features": 4},
        {"name": "a_max", "op": "reduce", "axis": "freq", "kind": "max", "input": "a"},
        {"name": "a_tmax", "op": "reduce", "axis": "time", "kind": "max"},
        {"name": "vector", "op": "concat", "inputs": ["fc", "a_tmax"]},
    ]
    return Spec({"spec_version": "1.3", "name": "flatten-then-relu", "track": "compact", "sample_rate": 16000,
                 "frontend": FRONTEND | {"patch_frames": 9, "patch_hop": 4}, "encoder": encoder,
                 "embedding": {"timestamp_embedding_size": 6, "scene_pooling": ["mean"], "scene_embedding_size": 6},
                 "parity": {"tolerance": 2e-05, "min_cosine": 0.99999999},
                 "license": {"code": "Apache-2.0", "weights": "CC-BY-4.0"}})


def models():
    spec = flatten_then_relu_spec()
    yield "flatten-then-relu", tm.HearDualModel(spec).load_parameters(seeded_parameters(spec, 3))
    for name in ["base", "crepe-tiny", "musicnn-mtt"]:
        yield name, load_model(name)


@pytest.fixture(scope="module", params=list(range(4)), ids=["flatten-then-relu", "base", "crepe-tiny", "musicnn-mtt"])
def model_and_audio(request):
    name, model = list(models())[request.param]
    spec = model.spec
    audio = input_batch("pink_noise", 3, padded_input_length(spec, 37), spec.sample_rate, seed=5)
    return name, model, torch.from_numpy(audio)


def test_in_place_layers_change_nothing(model_and_audio):
    """Without gradients the marked ReLUs and batch norms overwrite their input; with them, nothing is in place."""
    name, model, audio = model_and_audio
    with torch.no_grad():
        fast = model(audio)
    with torch.enable_grad():
        plain = model(audio).detach()
    assert torch.equal(fast, plain), name


def test_the_flatten_of_a_kept_point_is_not_overwritten():
    model = dict(models())["flatten-then-relu"]
    assert not model.a_flat_relu.inplace
    assert [n for n in ["base", "musicnn-mtt"] if any(getattr(m, "inplace", False) for m in load_model(n).modules())]


def test_blocks_of_any_size_give_the_same_embeddings(model_and_audio, monkeypatch):
    name, model, audio = model_and_audio
    with torch.no_grad():
        whole = model(audio).numpy()
        monkeypatch.setattr(tm, "BLOCK_BYTES", 3000)      # blocks of one item, or a few and an uneven last one
        monkeypatch.setattr(tm, "MIN_ROWS", 1)
        monkeypatch.setattr(tm, "FRONTEND_FRAMES", 7)
        small = model(audio).numpy()
    assert small.shape == whole.shape
    np.testing.assert_allclose(small, whole, rtol=0, atol=1e-6 * max(1.0, np.abs(whole).max()), err_msg=name)


def test_min_rows_make_blocks_of_whole_items():
    """A product of few rows per item gets items enough for MIN_ROWS rows; one of many keeps its BLOCK_BYTES
    blocks; a last block holds what is left."""
    cpu = torch.device("cpu")
    assert tm.blocks(20, tm.BLOCK_BYTES // 2, tm.MIN_ROWS // 8, cpu)[:2] == [slice(0, 8), slice(8, 16)]
    assert tm.blocks(20, tm.BLOCK_BYTES // 2, tm.MIN_ROWS // 8, cpu)[-1] == slice(16, 20)
    assert tm.blocks(20, tm.BLOCK_BYTES // 2, tm.MIN_ROWS, cpu)[0] == slice(0, 2)
    assert tm.blocks(20, 4 * tm.BLOCK_BYTES, tm.MIN_ROWS, cpu)[0] == slice(0, 1)


def test_kept_tap_operands_follow_the_weights():
    """The per-tap operands kept between calls are remade when the weights change in place (load_parameters, an
    update under no_grad): the embeddings are always those of a freshly built model with the same weights."""
    spec = Spec.builtin("hear-dual-base")
    audio = torch.from_numpy(input_batch("pink_noise", 2, padded_input_length(spec, 9), spec.sample_rate, seed=2))
    first, second = seeded_parameters(spec, 1), seeded_parameters(spec, 2)

    def fresh(params):
        return tm.HearDualModel(spec).load_parameters(params).requires_grad_(False)(audio)

    model = tm.HearDualModel(spec).load_parameters(first).requires_grad_(False)
    assert torch.equal(model(audio), fresh(first))
    model.load_parameters(second)
    assert torch.equal(model(audio), fresh(second))
    with torch.no_grad():
        model.conv4.weight.mul_(0.5)
    halved = dict(second, **{"conv4.weight": second["conv4.weight"] * np.float32(0.5)})
    assert torch.equal(model(audio), fresh(halved))
    assert not torch.equal(fresh(halved), fresh(second))


def test_gradients_flow_through_the_accumulating_products(model_and_audio):
    name, model, audio = model_and_audio
    convs = [m for m in model.modules() if isinstance(m, (tm.Conv1d, tm.Conv2d))]
    for m in convs:
        m.weight.requires_grad_(True)
    try:
        with torch.enable_grad():
            model(audio).square().mean().backward()
        grads = [m.weight.grad for m in convs]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().max() > 0 for g in grads), name
    finally:
        for m in convs:
            m.weight.requires_grad_(False)
            m.weight.grad = None


def test_short_sounds_share_frontend_blocks(monkeypatch):
    """Several whole short sounds go through the frontend as one block (an uneven last block included): each
    sound's power spectrum is what it is alone."""
    frontend = load_model("base").frontend
    audio = torch.from_numpy(input_batch("pink_noise", 9, 4000, 16000, seed=2))     # 23 frames a sound
    monkeypatch.setattr(tm, "FRONTEND_FRAMES", 50)                                 # blocks of 2, 2, 2, 2, 1 sounds
    with torch.no_grad():
        together = frontend.mel_power(audio)
        alone = torch.cat([frontend.mel_power(audio[i : i + 1]) for i in range(9)])
    assert together.shape == (9, 23, frontend.mel.shape[1])
    np.testing.assert_allclose(together.numpy(), alone.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kernel, stride",
                         [([4, 1], [2, 2]), ([2, 2], [2, 2]), ([3, 2], [1, 3]), ([2], [2]), ([3], [2])])
def test_max_pooling_is_the_max_over_each_window(kernel, stride):
    """max_of_slices against the windows taken one by one in numpy, windows that differ from their stride included,
    with and without autograd (which takes a path of its own)."""
    x = np.random.default_rng(1).standard_normal((2, 3, 19, 11)[: 2 + len(kernel)]).astype(np.float32)
    counts = [(n - k) // s + 1 for n, k, s in zip(x.shape[2:], kernel, stride)]
    expected = np.empty(x.shape[:2] + tuple(counts), np.float32)
    for out in np.ndindex(*counts):
        window = tuple(slice(s * o, s * o + k) for o, k, s in zip(out, kernel, stride))
        expected[(...,) + out] = x[(...,) + window].max(axis=tuple(range(2, x.ndim)))
    pool = tm.MaxPool2d(kernel, stride) if len(kernel) == 2 else tm.MaxPool1d(kernel[0], stride[0])
    with torch.no_grad():
        np.testing.assert_array_equal(pool(torch.from_numpy(x)).numpy(), expected)
    with torch.enable_grad():
        leaf = torch.from_numpy(x).requires_grad_(True)
        y = pool(leaf)
        y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    assert leaf.grad.sum() == expected.size       # each window's maximum gets the gradient once


def test_a_traced_frontend_computes_every_frame():
    """The silent-frame counts are data: a graph traced on a padded clip (torch.jit.trace, or torch.onnx's exporter
    that uses it) must not keep them as constants, or another clip's live frames there would read log(log_offset)."""
    frontend = load_model("base").frontend
    padded = torch.from_numpy(np.pad(input_batch("pink_noise", 2, 8000, 16000, seed=4), ((0, 0), (6400, 6400))))
    live = torch.from_numpy(input_batch("pink_noise", 2, 8000 + 12800, 16000, seed=5))
    with torch.no_grad():
        traced = torch.jit.trace(frontend, padded, check_trace=False)
        assert torch.equal(traced(padded), frontend(padded))
        np.testing.assert_allclose(traced(live).numpy(), frontend(live).numpy(), rtol=0, atol=1e-6)
