"""musicnn (Pons & Serra 2019, ISC licence) as a HEAR 2021 module: the original code and weights, unchanged.

The network is musicnn's own `musicnn.models.define_model` with the published checkpoints shipped in the
`musicnn` 0.1.0 package, built in a private TF1 graph and session (eager execution stays on in the process:
`musicnn.extractor` is never imported, since importing it disables eager execution globally). The frontend is
the log-mel of `musicnn.extractor.batch_data`, reproduced line by line (see `log_mel` for its one numpy point).
hear-dual's native port (weights "musicnn-mtt", ...) implements the same definitions, so the organizers' check is

    hear-dual compare hear_dual.originals.musicnn hear_dual.torch_impl --weights-a MTT_musicnn --weights-b musicnn-mtt

Models (load_model's "path"): MTT_musicnn (default), MSD_musicnn, MTT_vgg, MSD_vgg, or hear-dual's names
musicnn-mtt, musicnn-msd, vgg-mtt, vgg-msd. Audio is 16 kHz. Log-mel: 512-point FFT, hop 256, 96 mel bands;
librosa centres its frames, so a clip of n samples has T_frames = 1 + n // 256 frames and frame j is centred on
sample 256 j. The network reads patches of 187 frames (3 s) by 96 bands.

Embedding definitions (normative: hear-dual's port implements exactly these):

musicnn models (timestamp D = 753, scene D = 1506)
    The clip is zero-padded at the end to whole patches: F_total = 187 * ceil(T_frames / 187) frames, i.e. the
    audio is extended with zeros to L = 256 * F_total - 1 samples. Patch p is log-mel frames [187 p, 187 p + 187).
    Per frame, the timestamp embedding is the network's frame-level features concatenated in this order:
    timbral (408), temporal (153), cnn1 (64), cnn2 (64), cnn3 (64): the 753-d `midend_features` that musicnn's
    own temporal pooling reads. The embeddings are the first T_frames frames of all patches joined along time;
    timestamp k is at k * 256 / 16 = 16 k ms. The scene embedding is concat(mean over patches of mean_pool,
    mean over patches of max_pool), the network's own per-patch poolings (753 each), averaged in float64 over
    all patches (the zero padding of the last one included) and cast to float32.

vgg models (128 filters; timestamp D = 256, scene D = 256)
    Timestamps every 3 frames: T = 1 + n // 768, timestamp k at 48 k ms, centred on clip frame 3 k. Its
    embedding is the network's pool5 for the 187-frame patch of clip frames [3 k - 93, 3 k + 94), frames outside
    the clip computed from the zero-extended signal: 93 * 256 = 23808 zeros are prepended (clip frame j is frame
    j + 93 of the padded audio, exactly, as librosa pads with zeros too) and zeros appended to
    L = 256 * (3 (T - 1) + 187) - 1 samples; patch k is padded frames [3 k, 3 k + 187). pool5 (2 time x 1 freq
    x 128 channels) is flattened row-major (time, freq, channel) as tf.compat.v1.layers.flatten does. The scene
    embedding is the float64 mean, cast to float32, of the flattened pool5 over the patches tiled as for the
    musicnn models (clip zero-padded at the end to whole patches, patch p = frames [187 p, 187 p + 187)).

Besides the HEAR API: `log_mel` (the frontend), `network_outputs` (every named output of define_model for
given log-mel patches), `frame_features` and `patch_scene` (the per-patch timestamp and scene features above),
so that a port can be fed the same log-mel patches; the API functions are built from these.

Two facts about the original worth knowing when comparing with `musicnn.extractor.extractor` itself: its
feature dictionary repeats the first patch's cnn1, cnn2, cnn3 and penultimate for every later patch (its loop
unpacks them under other names), while the definitions here use the network's output for each patch; and under
numpy >= 2 its log-mel overflows (see `log_mel`). With numpy2_float16=True the network outputs here match the
extractor's (the ones it does not repeat) to 1e-4 (the taggram to 1e-7). A patch's outputs depend on which
patches share its session.run at float32 rounding level (oneDNN), so bit-equality needs the same grouping.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from contextlib import contextmanager

import librosa
import numpy as np

from hear_dual.quiet import import_tensorflow

try:
    tf = import_tensorflow()     # without its start-up banners (hear_dual.quiet)
except ImportError:  # load_model explains what to install; the module itself still imports
    tf = None

SAMPLE_RATE = 16000   # musicnn.configuration.SR
HOP = 256             # configuration.FFT_HOP
N_FFT = 512           # configuration.FFT_SIZE
N_MELS = 96           # configuration.N_MELS
PATCH_FRAMES = int(librosa.time_to_frames(3, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP)) + 1   # 187, as extractor
VGG_STRIDE = 3        # vgg timestamps every 3 frames (48 ms)
VGG_CONTEXT = 93      # frames of a vgg patch before its centre frame (187 = 93 + 1 + 93)
BATCH = 16            # patches per session.run: bounds the activations' memory for any clip length (larger
                      # batches are not faster on CPU)

NAMES = {"MTT_musicnn": "MTT_musicnn", "MSD_musicnn": "MSD_musicnn", "MTT_vgg": "MTT_vgg", "MSD_vgg": "MSD_vgg",
         "musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn", "vgg-mtt": "MTT_vgg", "vgg-msd": "MSD_vgg"}
NUM_CLASSES = 50      # len(configuration.MTT_LABELS) == len(configuration.MSD_LABELS)
OUTPUTS = {"musicnn": ("logits", "timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool",
                       "penultimate"),
           "vgg": ("logits", "pool1", "pool2", "pool3", "pool4", "pool5")}
FRAME_PARTS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3")   # the order of musicnn's midend_features
SIZES = {"musicnn": (753, 1506), "vgg": (256, 256)}              # (timestamp, scene) embedding sizes


def _install_hint() -> str:
    if tf is None:
        return "pip install tensorflow tf-keras && pip install --no-deps musicnn==0.1.0"
    major, minor = tf.__version__.split(".")[:2]
    return f"pip install --no-deps musicnn==0.1.0 tf-keras=={major}.{minor}.0"


def _require() -> str:
    """musicnn's package directory, or ImportError saying what to install."""
    found = {name: importlib.util.find_spec(name) for name in ("musicnn", "tf_keras", "tensorflow")}
    missing = [name for name, spec in found.items() if spec is None or (name == "tensorflow" and tf is None)]
    if missing:
        raise ImportError(f"hear_dual.originals.musicnn needs {', '.join(missing)}: {_install_hint()} "
                          "(this module sets TF_USE_LEGACY_KERAS=1 itself)")
    return found["musicnn"].submodule_search_locations[0]


@contextmanager
def _legacy_keras():
    """musicnn's tf.compat.v1.layers only exist in tf_keras; TF picks the Keras behind them from this variable
    when they are first used. Restored afterwards so that other code in the process keeps its tf.keras."""
    previous = os.environ.get("TF_USE_LEGACY_KERAS")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TF_USE_LEGACY_KERAS"]
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = previous


def _family(name: str) -> str:
    return "vgg" if "vgg" in name else "musicnn"


class MusicnnModel(tf.Module if tf is not None else object):
    """One musicnn network in its own TF1 graph and session (a tf.Module, as heareval requires)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, name: str, session, inputs, training, outputs: dict):
        super().__init__(name=name)
        self.model_name = name
        self.family = _family(name)
        self.timestamp_embedding_size, self.scene_embedding_size = SIZES[self.family]
        self._session, self._inputs, self._training, self._outputs = session, inputs, training, outputs


def load_model(model_file_path: str = "") -> MusicnnModel:
    """model_file_path names the musicnn model (see NAMES); "" is MTT_musicnn."""
    name = NAMES.get(model_file_path or "MTT_musicnn")
    if name is None:
        raise ValueError(f"unknown musicnn model {model_file_path!r}; expected one of {', '.join(NAMES)}")
    package_dir = _require()
    with _legacy_keras():
        # musicnn's own import sets TF's Python log level to ERROR, as it always did
        from musicnn import models

        graph = tf.Graph()
        # The graph as musicnn.extractor.extractor builds it, is_training fed False; the Saver must be built and
        # restored inside the graph, since outside it the process is eager.
        with graph.as_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # tf.compat.v1.layers' deprecation notices
            with tf.name_scope("model"):
                x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, N_MELS])
                is_training = tf.compat.v1.placeholder(tf.bool)
                try:
                    tensors = models.define_model(x, is_training, name, NUM_CLASSES)
                except AttributeError as e:
                    if "Keras 3" not in str(e):
                        raise
                    raise RuntimeError("tf.compat.v1.layers was first used in this process without "
                                       "TF_USE_LEGACY_KERAS=1, so TensorFlow bound it to Keras 3; set "
                                       "TF_USE_LEGACY_KERAS=1 before starting Python") from e
            session = tf.compat.v1.Session(graph=graph)
            # The checkpoint's own `checkpoint` file points at the authors' machine: give the prefix.
            tf.compat.v1.train.Saver().restore(session, os.path.join(package_dir, name) + "/")
    return MusicnnModel(name, session, x, is_training, dict(zip(OUTPUTS[_family(name)], tensors, strict=True)))


def log_mel(audio_1d: np.ndarray, numpy2_float16: bool = False) -> np.ndarray:
    """musicnn.extractor.batch_data's log-mel of one 16 kHz sound: (frames, 96) float32.

    numpy2_float16=True reproduces the extractor's line literally under numpy >= 2, where it overflows to inf."""
    audio_rep = librosa.feature.melspectrogram(y=np.asarray(audio_1d, dtype=np.float32), sr=SAMPLE_RATE,
                                               hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    audio_rep = audio_rep.astype(np.float16)
    if numpy2_float16:
        return np.log10(10000 * audio_rep + 1).astype(np.float32)
    # The extractor writes np.log10(10000 * audio_rep + 1). musicnn pins numpy < 1.17, whose value-based casting
    # promotes 10000 * float16 to float32 (10000's minimal type is uint16; uint16 with float16 gives float32), so
    # the log was computed, and the models trained, in float32. Under numpy >= 2 (NEP 50) the same line stays
    # float16 and overflows to inf for mel power above about 6.55; the cast keeps numpy 1.x's result.
    return np.log10(10000 * audio_rep.astype(np.float32) + 1)


def _check_patches(log_mel_patches) -> np.ndarray:
    patches = np.asarray(log_mel_patches)
    if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
        raise ValueError(f"log-mel patches must be (n_patches, {PATCH_FRAMES}, {N_MELS}), got shape {patches.shape}")
    return np.ascontiguousarray(patches, dtype=np.float32)


def _run(model: MusicnnModel, log_mel_patches, names) -> dict[str, np.ndarray]:
    """The named network outputs for the patches, BATCH patches per session.run."""
    patches = _check_patches(log_mel_patches)
    if not len(patches):   # TF's batch normalisation rejects an empty batch: the graph's static shapes instead
        return {name: np.zeros([0, *model._outputs[name].shape[1:]], np.float32) for name in names}
    fetches = {name: model._outputs[name] for name in names}
    runs = [model._session.run(fetches, {model._inputs: patches[i : i + BATCH], model._training: False})
            for i in range(0, len(patches), BATCH)]
    return {name: np.concatenate([run[name] for run in runs]) for name in names}


def network_outputs(model: MusicnnModel, log_mel_patches: np.ndarray) -> dict[str, np.ndarray]:
    """Every named output of define_model, shaped as the network gives it, for (n_patches, 187, 96) log-mel
    patches (see OUTPUTS; the extractor's taggram is sigmoid(logits))."""
    return _run(model, log_mel_patches, OUTPUTS[model.family])


def frame_features(model: MusicnnModel, log_mel_patches: np.ndarray) -> np.ndarray:
    """Per-patch timestamp features: (n, 187, 753) frame features for musicnn, (n, 256) flat pool5 for vgg."""
    if model.family == "vgg":
        pool5 = _run(model, log_mel_patches, ["pool5"])["pool5"]
        return pool5.reshape(len(pool5), model.timestamp_embedding_size)   # row-major: time, freq, channel
    out = _run(model, log_mel_patches, FRAME_PARTS)   # cnn1..3 are (n, 187, 64, 1)
    return np.concatenate([out[name].reshape(out[name].shape[:3]) for name in FRAME_PARTS], axis=2)


def patch_scene(model: MusicnnModel, log_mel_patches: np.ndarray) -> np.ndarray:
    """Per-patch scene vectors: (n, 1506) [mean_pool, max_pool] for musicnn, (n, 256) flat pool5 for vgg."""
    if model.family == "vgg":
        return frame_features(model, log_mel_patches)
    out = _run(model, log_mel_patches, ["mean_pool", "max_pool"])
    return np.concatenate([out["mean_pool"], out["max_pool"]], axis=1)


def _check_audio(audio) -> np.ndarray:
    array = np.asarray(audio)   # numpy, a tf tensor (heareval passes tf.convert_to_tensor), or a CPU torch tensor
    if array.ndim != 2:
        raise ValueError(f"audio must be 2-D float (n_sounds, n_samples), got {array.ndim}-D of shape {array.shape}")
    if array.dtype.kind != "f":
        raise ValueError(f"audio must be floating point (float32 or float64) in [-1, 1], got {array.dtype}; "
                         "scale integer PCM first, e.g. int16 audio / 32768")
    if array.shape[1] < 1:
        raise ValueError(f"audio must have at least one sample per sound, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array.sum(axis=1, dtype=np.float64)))
    if bad.size:
        raise ValueError(f"audio must be finite, got NaN or infinity in sound(s) {', '.join(map(str, bad[:10]))}"
                         + (" ..." if bad.size > 10 else ""))
    return np.ascontiguousarray(array, dtype=np.float32)


def _log_mels(audio: np.ndarray, pad_left: int, n_frames: int) -> np.ndarray:
    """(n_sounds, n_frames, 96): each sound with pad_left zeros before it and zeros after it up to
    256 * n_frames - 1 samples, which librosa's centred framing turns into exactly n_frames frames."""
    n_sounds, n_samples = audio.shape
    padding = (pad_left, HOP * n_frames - 1 - pad_left - n_samples)
    mels = np.empty((n_sounds, n_frames, N_MELS), np.float32)
    for i, sound in enumerate(audio):
        mels[i] = log_mel(np.pad(sound, padding))
    return mels


def _tiled(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-mels zero-padded at the end to whole patches, and the patches' first frames."""
    n_patches = math.ceil((1 + audio.shape[1] // HOP) / PATCH_FRAMES)
    return _log_mels(audio, 0, PATCH_FRAMES * n_patches), PATCH_FRAMES * np.arange(n_patches)


def _vgg_centred(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-mels with 93 frames of zeros before the clip, and the first frames of the patches centred on the
    timestamps (clip frames 0, 3, 6, ...)."""
    n_timestamps = 1 + audio.shape[1] // (VGG_STRIDE * HOP)
    n_frames = VGG_STRIDE * (n_timestamps - 1) + PATCH_FRAMES
    return _log_mels(audio, VGG_CONTEXT * HOP, n_frames), VGG_STRIDE * np.arange(n_timestamps)


def _per_patch(function, model: MusicnnModel, mels: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """function(model, patches) for every patch mels[s, start : start + 187], sound-major, cut BATCH at a time
    across sounds (so that the network runs batched while the patches are never all copied at once)."""
    total = len(mels) * len(starts)
    rows = None
    for first in range(0, total, BATCH):
        sound, patch = np.divmod(np.arange(first, min(first + BATCH, total)), len(starts))
        out = function(model, mels[sound[:, None], starts[patch][:, None] + np.arange(PATCH_FRAMES)])
        if rows is None:
            rows = np.empty((total, *out.shape[1:]), np.float32)
        rows[first : first + len(out)] = out
    if rows is None:   # no sounds: the network's shapes for no patches
        rows = function(model, np.zeros((0, PATCH_FRAMES, N_MELS), np.float32))
    return rows


def get_timestamp_embeddings(audio, model: MusicnnModel) -> tuple[tf.Tensor, tf.Tensor]:
    """audio (n_sounds, n_samples) at 16 kHz -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) ms."""
    audio = _check_audio(audio)
    n_sounds, n_samples = audio.shape
    if model.family == "vgg":
        mels, starts = _vgg_centred(audio)
        n_out, hop, per_patch = len(starts), VGG_STRIDE * HOP, 1
    else:
        mels, starts = _tiled(audio)
        n_out, hop, per_patch = 1 + n_samples // HOP, HOP, PATCH_FRAMES
    rows = _per_patch(frame_features, model, mels, starts)
    embeddings = rows.reshape(n_sounds, len(starts) * per_patch, model.timestamp_embedding_size)[:, :n_out]
    timestamps = (np.arange(n_out) * hop * 1000.0 / SAMPLE_RATE).astype(np.float32)
    return tf.constant(embeddings), tf.constant(np.tile(timestamps, (n_sounds, 1)))


def get_scene_embeddings(audio, model: MusicnnModel) -> tf.Tensor:
    """audio (n_sounds, n_samples) at 16 kHz -> (n_sounds, scene_embedding_size) float32."""
    audio = _check_audio(audio)
    mels, starts = _tiled(audio)
    rows = _per_patch(patch_scene, model, mels, starts).reshape(len(audio), len(starts), model.scene_embedding_size)
    return tf.constant(rows.mean(axis=1, dtype=np.float64).astype(np.float32))
