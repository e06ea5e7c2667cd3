"""hear_dual.originals.musicnn: the original musicnn network and weights behind the HEAR 2021 API.

The reference values here are re-derived by hand with plain numpy/librosa calls (padding, log-mel, patch cuts)
and fed to the original network through network_outputs, so that the embedding definitions in the module's
docstring are checked, not merely re-run.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings

import numpy as np
import pytest

for _name in ("musicnn", "tf_keras"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(f"{_name} is not installed (pip install --no-deps musicnn==0.1.0 tf-keras)",
                    allow_module_level=True)
tf = pytest.importorskip("tensorflow")
librosa = pytest.importorskip("librosa")

from hear_dual.originals import musicnn as mn  # noqa: E402

SR = 16000
LENGTHS = (1, 255, 256, 4000, 47871, 47872, 48000, 100000)
SIZES = {"MTT_musicnn": (753, 1506), "MSD_musicnn": (753, 1506), "MTT_vgg": (256, 256), "MSD_vgg": (256, 256)}


@pytest.fixture(scope="module")
def models():
    """Loaded on first use, one per name, shared by the tests of this file."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = mn.load_model(name)
        return cache[name]

    return get


def sine(n: int, amplitude: float = 0.5, freq: float = 440.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def music_like(n: int, seed: int = 0) -> np.ndarray:
    """A chord with an envelope plus noise: loud enough to overflow numpy 2's float16 log-mel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(100, 2000, 3)) / 3
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.05 * rng.standard_normal(n)
    return (0.5 * x).astype(np.float32)


def hand_log_mel(audio: np.ndarray) -> np.ndarray:
    """musicnn.extractor.batch_data's lines, with numpy 1.x's float32 promotion of 10000 * float16."""
    mel = librosa.feature.melspectrogram(y=audio, sr=SR, hop_length=256, n_fft=512, n_mels=96).T
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)


@pytest.mark.parametrize("name", ["", "MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg",
                                  "musicnn-mtt", "musicnn-msd", "vgg-mtt", "vgg-msd"])
def test_load_model(name):
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    model = mn.load_model(name)
    assert isinstance(model, tf.Module)
    assert model.model_name == mn.NAMES[name or "MTT_musicnn"]
    for key, value in zip(("timestamp_embedding_size", "scene_embedding_size"), SIZES[model.model_name]):
        assert type(getattr(model, key)) is int and getattr(model, key) == value
    assert type(model.sample_rate) is int and model.sample_rate == SR
    assert tf.executing_eagerly()   # musicnn.extractor would have disabled it for the whole process
    assert os.environ.get("TF_USE_LEGACY_KERAS") == before


def test_unknown_model_name():
    with pytest.raises(ValueError, match="MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg, musicnn-mtt"):
        mn.load_model("MSD_musicnn_big")


def test_missing_dependency_names_the_install_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf_keras" else real(name, *a))
    with pytest.raises(ImportError) as error:
        mn.load_model()
    major, minor = tf.__version__.split(".")[:2]
    message = str(error.value)
    assert "\n" not in message and "tf_keras" in message and "TF_USE_LEGACY_KERAS=1" in message
    assert f"pip install --no-deps musicnn==0.1.0 tf-keras=={major}.{minor}.0" in message


def test_heareval_call_path():
    from hear_dual.hear_module import load_hear_module, scene_embeddings, timestamp_embeddings

    loaded = load_hear_module("hear_dual.originals.musicnn", "musicnn-mtt")
    assert loaded.kind == "tf"
    embeddings, timestamps = timestamp_embeddings(loaded, np.stack([sine(8000), music_like(8000)]))
    assert embeddings.shape == (2, 32, 753) and timestamps.shape == (2, 32)
    assert scene_embeddings(loaded, np.zeros((1, 100), np.float32)).shape == (1, 1506)
    assert tf.executing_eagerly()


@pytest.mark.parametrize("name", ["MTT_musicnn", "MTT_vgg"])
@pytest.mark.parametrize("n", LENGTHS)
def test_timestamps(name, n, models):
    model = models(name)
    hop = 256 if "musicnn" in name else 768
    embeddings, timestamps = mn.get_timestamp_embeddings(music_like(n)[None], model)
    assert isinstance(embeddings, tf.Tensor) and isinstance(timestamps, tf.Tensor)
    assert embeddings.dtype == tf.float32 and timestamps.dtype == tf.float32
    n_out = 1 + n // hop
    assert embeddings.shape == (1, n_out, model.timestamp_embedding_size)
    assert np.array_equal(timestamps.numpy(), (np.arange(n_out) * hop / 16)[None].astype(np.float32))
    assert timestamps.numpy()[0, -1] <= n * 1000 / SR
    assert np.isfinite(embeddings.numpy()).all()
    scene = mn.get_scene_embeddings(music_like(n)[None], model)
    assert scene.dtype == tf.float32 and scene.shape == (1, model.scene_embedding_size)


@pytest.mark.parametrize("name", ["MTT_musicnn", "MTT_vgg"])
def test_sounds_keep_their_order(name, models):
    """Patches of several sounds share session.runs; each sound's rows must stay its own."""
    model = models(name)
    audio = np.stack([music_like(20000, seed) for seed in range(3)] + [np.zeros(20000, np.float32)])
    embeddings, _ = mn.get_timestamp_embeddings(audio, model)
    scenes = mn.get_scene_embeddings(audio, model).numpy()
    for i, sound in enumerate(audio):
        alone, _ = mn.get_timestamp_embeddings(sound[None], model)
        # oneDNN's results depend on the batch a patch shares a run with, at float32 rounding level
        np.testing.assert_allclose(embeddings.numpy()[i], alone.numpy()[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(scenes[i], mn.get_scene_embeddings(sound[None], model).numpy()[0],
                                   rtol=1e-4, atol=1e-4)


def test_musicnn_definitions_by_hand(models):
    """7 s clip: 438 frames in 3 zero-padded patches; the frames are the network's midend features, the scene
    the float64 mean of its per-patch mean_pool and max_pool."""
    model = models("MTT_musicnn")
    clip = music_like(7 * SR)
    n_frames = 1 + len(clip) // 256
    padded_frames = 187 * math.ceil(n_frames / 187)
    mel = hand_log_mel(np.concatenate([clip, np.zeros(256 * padded_frames - 1 - len(clip), np.float32)]))
    assert mel.shape == (561, 96)
    # the end padding only extends the signal: the clip's own frames are those librosa gives the clip alone
    np.testing.assert_array_equal(mel[:n_frames], hand_log_mel(clip))
    patches = mel.reshape(3, 187, 96)

    out = mn.network_outputs(model, patches)
    by_hand = np.concatenate([out["timbral"], out["temporal"]] + [out[k][..., 0] for k in ("cnn1", "cnn2", "cnn3")],
                             axis=2)
    assert by_hand.shape == (3, 187, 753)
    assert np.array_equal(mn.frame_features(model, patches), by_hand)
    embeddings, timestamps = mn.get_timestamp_embeddings(clip[None], model)
    assert np.array_equal(embeddings.numpy()[0], by_hand.reshape(-1, 753)[:n_frames])
    assert timestamps.numpy()[0, -1] == 16 * (n_frames - 1)

    # the network's own pools are the time mean and max of these 753 features
    np.testing.assert_allclose(out["mean_pool"], by_hand.mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["max_pool"], by_hand.max(axis=1))
    per_patch = np.concatenate([out["mean_pool"], out["max_pool"]], axis=1)
    scene = mn.get_scene_embeddings(clip[None], model).numpy()[0]
    assert np.array_equal(scene, per_patch.mean(axis=0, dtype=np.float64).astype(np.float32))


def test_vgg_definitions_by_hand(models):
    """4 s clip: timestamp k is pool5 of clip frames [3k - 93, 3k + 94) of the zero-extended clip."""
    model = models("MTT_vgg")
    clip = music_like(4 * SR, seed=3)
    n_out = 1 + len(clip) // 768
    needed = 3 * (n_out - 1) + 187
    mel = hand_log_mel(np.concatenate([np.zeros(93 * 256, np.float32), clip,
                                       np.zeros(256 * needed - 1 - 93 * 256 - len(clip), np.float32)]))
    assert mel.shape == (needed, 96)
    # clip frame j is padded frame j + 93: librosa's centring pads with the same zeros
    n_frames = 1 + len(clip) // 256
    np.testing.assert_array_equal(mel[93 : 93 + n_frames], hand_log_mel(clip))

    patches = np.stack([mel[3 * k : 3 * k + 187] for k in range(n_out)])
    pool5 = mn.network_outputs(model, patches)["pool5"]
    assert pool5.shape == (n_out, 2, 1, 128)
    embeddings, timestamps = mn.get_timestamp_embeddings(clip[None], model)
    assert embeddings.shape == (1, n_out, 256)
    for k in (0, 1, n_out - 1):
        assert np.array_equal(embeddings.numpy()[0, k], pool5[k].reshape(-1)), k   # row-major: time, freq, chan
    assert np.array_equal(embeddings.numpy()[0], pool5.reshape(n_out, 256))
    assert timestamps.numpy()[0, -1] == 48 * (n_out - 1)

    # scene: the mean of the flat pool5 over the tiled patches of the clip zero-padded at the end (2 patches)
    tiled_frames = 187 * math.ceil(n_frames / 187)
    tiled = hand_log_mel(np.concatenate([clip, np.zeros(256 * tiled_frames - 1 - len(clip), np.float32)]))
    flat = mn.network_outputs(model, tiled.reshape(-1, 187, 96))["pool5"].reshape(-1, 256)
    scene = mn.get_scene_embeddings(clip[None], model).numpy()[0]
    assert np.array_equal(scene, flat.mean(axis=0, dtype=np.float64).astype(np.float32))


def test_network_outputs_names_and_shapes(models):
    patches = np.stack([hand_log_mel(music_like(47871))] * 2)
    musicnn = mn.network_outputs(models("MTT_musicnn"), patches)
    assert {k: v.shape for k, v in musicnn.items()} == {
        "logits": (2, 50), "timbral": (2, 187, 408), "temporal": (2, 187, 153), "cnn1": (2, 187, 64, 1),
        "cnn2": (2, 187, 64, 1), "cnn3": (2, 187, 64, 1), "mean_pool": (2, 753), "max_pool": (2, 753),
        "penultimate": (2, 200)}
    vgg = mn.network_outputs(models("MTT_vgg"), patches)
    assert list(vgg) == ["logits", "pool1", "pool2", "pool3", "pool4", "pool5"] and vgg["pool5"].shape == (2, 2, 1, 128)
    assert mn.patch_scene(models("MTT_musicnn"), patches).shape == (2, 1506)
    assert mn.patch_scene(models("MTT_vgg"), patches).shape == (2, 256)
    with pytest.raises(ValueError, match=r"\(n_patches, 187, 96\)"):
        mn.network_outputs(models("MTT_vgg"), patches[:, :100])


def test_log_mel_float16_overflow():
    loud, quiet = sine(48000, 0.5), sine(48000, 0.001)
    assert mn.log_mel(loud).dtype == np.float32 and mn.log_mel(loud).shape == (188, 96)
    assert np.isfinite(mn.log_mel(loud)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # numpy's own overflow warning is the point here
        assert np.isinf(mn.log_mel(loud, numpy2_float16=True)).any()
        literal = mn.log_mel(quiet, numpy2_float16=True)
    # No overflow on quiet input; the two agree to float16 resolution (numpy 2 rounds the log to float16).
    assert literal.dtype == np.float32 and np.isfinite(literal).all()
    np.testing.assert_allclose(literal, mn.log_mel(quiet), rtol=0, atol=2e-3)
    assert np.array_equal(mn.log_mel(loud), hand_log_mel(loud))


@pytest.mark.parametrize("audio, match", [
    (np.zeros(1000, np.float32), "2-D"),
    (np.zeros((1, 2, 100), np.float32), "2-D"),
    (np.zeros((2, 100), np.int16), "floating point.*int16"),
    (np.zeros((2, 0), np.float32), "at least one sample"),
    (np.array([[0.0, 1.0], [np.nan, 0.0]], np.float32), "finite.*sound\\(s\\) 1"),
    (np.array([[np.inf, 0.0]]), "finite"),
])
def test_invalid_audio(audio, match, models):
    model = models("MTT_musicnn")
    for function in (mn.get_timestamp_embeddings, mn.get_scene_embeddings):
        for given in (audio, tf.convert_to_tensor(audio)):
            with pytest.raises(ValueError, match=match):
                function(given, model)


@pytest.mark.parametrize("name", ["MTT_musicnn", "MTT_vgg"])
def test_no_sounds(name, models):
    model = models(name)
    embeddings, timestamps = mn.get_timestamp_embeddings(np.zeros((0, 4000), np.float32), model)
    n_out = 16 if "musicnn" in name else 6
    assert embeddings.shape == (0, n_out, model.timestamp_embedding_size) and timestamps.shape == (0, n_out)
    assert mn.get_scene_embeddings(np.zeros((0, 4000), np.float32), model).shape == (0, model.scene_embedding_size)


def test_fsdd_speech(models):
    from hear_dual.datasets import fsdd_batch

    audio = fsdd_batch(SR, 3, seed=0)
    if audio is None:
        pytest.skip("FSDD not found")
    for name in ("MTT_musicnn", "MTT_vgg"):
        embeddings, timestamps = mn.get_timestamp_embeddings(audio, models(name))
        assert np.isfinite(embeddings.numpy()).all() and embeddings.shape[:2] == timestamps.shape
        assert np.isfinite(mn.get_scene_embeddings(audio, models(name)).numpy()).all()
