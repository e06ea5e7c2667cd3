"""Train a hear-dual model on procedurally generated audio and espeak-ng speech (no evaluation data).

    python -m training.synth --cache /work/trained/espeak-cache --seed 0                   # once, ~4 min
    python -m training.train --seed 0 --steps 5000 --minutes 45 \
        --cache /work/trained/espeak-cache --out-dir /work/trained                          # hear-dual-base
    python -m training.train --spec training/specs/hear-dual-compact-stream.json --teacher base --input-stats \
        --seed 0 --steps 5000 --minutes 50 --cache /work/trained/espeak-cache --out-dir /work/trained \
        --name hear-dual-compact-run3 --weights input_stats=8,contrastive=0.25,speaker=1,quiet_gain=0.01
    python -m training.graft --stream /work/trained/hear-dual-compact-run3 --out-dir /work/trained  # hear-dual-compact

With --teacher, the student also learns to predict the teacher's standardised timestamp embeddings (a linear
map of each of its own frames) and scene embeddings (a linear map of its standardised scene): distillation,
on the same training audio, weights DISTILL_WEIGHTS. The heads below stay; the teacher is never trained.
With --input-stats the scene also regresses the clip's own log-mel statistics (InputStats); with
--frame-spectrum K the last K timestamp dimensions regress their own frame's top K spectral components
(FrameSpectrum; tried, not in the shipped recipe, see training/README.md). The shipped compact makes them exact
instead: training/graft.py appends them to a trained stream as a fixed skip_conv1d (spectrum_kernel).

The model is a shipped architecture (hear_dual.torch_impl.model.HearDualModel on a built-in spec or a spec
file, --spec),
initialised like the shipped seeded weights (seeded_parameters(spec, seed) with calibrated
batch norm). For training only, each BatchNorm layer's forward is replaced (on the instance, here; nothing in
hear_dual/ changes) by real batch norm: batch statistics in training mode, running statistics updated with
momentum. The frontend has no parameters and is computed in the data-loading worker, in the spec's precision.
Near-silent clips feed the quiet-gain penalty (see quiet_gain and training/README.md).

Each step draws B clips (a mix of espeak-ng words and synthetic sources, see training/synth.py) and two
independently augmented 1 s views of each. The scene embedding (mean+max over time, exactly what
get_scene_embeddings returns; 1024-d for base, 64-d for compact) is standardised by a non-affine BatchNorm1d and
feeds linear heads:

    source         6-way: note / noise / impulses / chirp / mixture / speech          (all clips)
    note_pitch     semitone bin of a harmonic note's f0 (49 bins, 60-1000 Hz)        (note clips)
    word           which of the 509 words was spoken                                 (speech clips)
    speaker        which of the 240 synthetic speakers (voice+variant+pitch+speed)   (speech clips)
    accent         the speaker's espeak-ng English voice (8)                          (speech clips)
    variant        the speaker's espeak-ng voice variant (50)                         (speech clips)
    prosody        regression of the speaker's standardised espeak pitch and speed    (speech clips)
    phoneme_bag    which phonemes the word contains (multi-label, espeak-ng's own
                   transcription in the speaker's accent, 60 phonemes)              (speech clips)
    phoneme_first  the word's first phoneme; phoneme_last: its last phoneme          (speech clips)
    contrastive    SimCLR NT-Xent between the two views, on an MLP projection         (all clips)

AdamW, linear warm-up then cosine decay over --steps. The run stops early if the wall-clock budget
(--minutes, counted from process start, less a reserve for the end) runs out. The batch-norm running statistics
are kept as trained (--recalibration-batches re-estimates them instead), the canonical parameters are saved to
an .npz and exported to ONNX with hear_dual.export.write_checkpoint, with provenance metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time

START = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from hear_dual.audio import num_timestamps, padded_input_length  # noqa: E402
from hear_dual.export import calibrate_batchnorm, calibration_audio, seeded_parameters, write_checkpoint  # noqa: E402
from hear_dual.spec import Spec  # noqa: E402
from hear_dual.torch_impl.model import BatchNorm, HearDualModel, LogMel  # noqa: E402
from training import synth  # noqa: E402

SOURCE_SPEECH = synth.SOURCE_CLASSES.index("speech")
# Near-silent clips per step for the quiet-gain penalty, and the log-mel perturbation it measures gain with.
QUIET_CLIPS = 4
QUIET_SIGMA = 1e-3
# Classification heads on the standardised scene embedding; label -1 = not applicable to that clip.
CLASS_TASKS = ("source", "note_pitch", "word", "speaker", "accent", "variant", "phoneme_first", "phoneme_last")


# --- data ---------------------------------------------------------------------------------------------------

class Batches(torch.utils.data.Dataset):
    """Item i is training batch i, a pure function of (seed, i): reproducible with any number of workers."""

    def __init__(self, spec: Spec, cache_dir: str, batch: int, clip_seconds: float, speech_fraction: float,
                 seed: int, utterances: np.ndarray, length: int = 10**9, stream: int = 1):
        self.spec, self.cache_dir, self.batch, self.seed, self.stream = spec, cache_dir, batch, seed, stream
        self.n = int(round(clip_seconds * spec.sample_rate))
        self.speech_fraction, self.utterances, self.length = speech_fraction, utterances, length
        self.cache = None
        self.frontend = None
        t = num_timestamps(spec, self.n)
        self.pad = (spec.pad_left, padded_input_length(spec, t) - spec.pad_left - self.n)

    def __len__(self) -> int:
        return self.length

    def _speech_view(self, clip: np.ndarray, rng) -> np.ndarray:
        n = self.n
        if clip.size >= n:
            start = rng.integers(0, clip.size - n + 1)
            return clip[start:start + n].copy()
        out = np.zeros(n, np.float32)
        start = rng.integers(0, n - clip.size + 1)
        out[start:start + clip.size] = clip
        return out

    def __getitem__(self, index: int) -> dict:
        if self.cache is None:
            self.cache = synth.SpeechCache(self.cache_dir)
            self.frontend = LogMel(self.spec)
        rng = np.random.default_rng([self.seed, self.stream, index])
        n_speech = int(rng.binomial(self.batch, self.speech_fraction))
        views = [[], []]
        labels = {name: [] for name in CLASS_TASKS}
        n_phon = len(self.cache.phonemes)
        phon_bag = np.zeros((self.batch, n_phon), np.float32)
        prosody = np.full((self.batch, 2), np.nan, np.float32)
        for k in range(self.batch):
            label = dict.fromkeys(CLASS_TASKS, -1)
            if k < n_speech:
                u = int(self.utterances[rng.integers(0, len(self.utterances))])
                clip = self.cache.clip(u)
                raw = [self._speech_view(clip, rng) for _ in range(2)]          # two time shifts / crops
                w, s = int(self.cache.word[u]), int(self.cache.speaker[u])
                accent = int(self.cache.speaker_accent[s])
                phones = self.cache.word_phonemes[synth.BASE_VOICES[accent]][w]
                label |= {"source": SOURCE_SPEECH, "word": w, "speaker": s, "accent": accent,
                          "variant": int(self.cache.speaker_variant[s])}
                if phones:
                    label |= {"phoneme_first": phones[0], "phoneme_last": phones[-1]}
                    phon_bag[k, phones] = 1.0
                prosody[k] = self.cache.speaker_pitch[s], self.cache.speaker_speed[s]
            else:
                x, src, p = synth.synthetic_clip(self.n, rng)
                shift = rng.integers(-self.n // 5, self.n // 5 + 1)
                raw = [x, np.roll(x, shift)]
                label |= {"source": src, "note_pitch": p}
            for name in CLASS_TASKS:
                labels[name].append(label[name])
            for v in range(2):
                views[v].append(synth.augment(raw[v], rng))
        audio = torch.from_numpy(np.stack(views[0] + views[1]))                # (2B, n): view 0 then view 1
        with torch.no_grad():
            logmel = self.frontend(F.pad(audio, self.pad))
        out = {name: torch.tensor(v * 2, dtype=torch.int64) for name, v in labels.items()}
        out["phoneme_bag"] = torch.from_numpy(np.concatenate([phon_bag, phon_bag]))
        out["prosody"] = torch.from_numpy(np.concatenate([prosody, prosody]))
        return {"logmel": logmel, **self._quiet(index), **out}

    def _quiet(self, index: int) -> dict:
        """Near-silent clips (digital silence, or white / pink / brown noise at -140..-60 dBFS RMS) and a random
        log-mel perturbation of them, for the quiet-gain penalty. Own random stream: the main data is unchanged."""
        rng = np.random.default_rng([self.seed, 100 + self.stream, index])
        clips = []
        for _ in range(QUIET_CLIPS):
            x = np.zeros(self.n)
            if rng.random() > 0.25:
                noise = synth._coloured_noise(self.n, rng, float(rng.choice([0.0, 1.0, 2.0])))
                x = noise / synth._rms(noise) * 10 ** (rng.uniform(-140, -60) / 20)
            clips.append(x.astype(np.float32))
        with torch.no_grad():
            quiet = self.frontend(F.pad(torch.from_numpy(np.stack(clips)), self.pad))
        delta = torch.from_numpy(QUIET_SIGMA * rng.standard_normal(tuple(quiet.shape))).to(quiet.dtype)
        return {"quiet": quiet, "quiet_delta": delta}


# --- model --------------------------------------------------------------------------------------------------

class BatchNormTrainer:
    """Training-mode forward for a hear_dual BatchNorm instance (inference parameters stay the spec's four)."""

    def __init__(self, layer: BatchNorm, momentum: float):
        self.layer, self.momentum = layer, momentum
        self.recalibrating = False
        self.sum_mean = self.sum_var = None
        self.count = 0
        layer.forward = self.forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        if self.recalibrating:
            # Exact statistics of the frozen network's activations on fresh batches, averaged over batches.
            x64 = x.double()
            mean, var = x64.mean(dim=(0, 2)), x64.var(dim=(0, 2))
            second = var + mean * mean
            self.sum_mean = mean if self.sum_mean is None else self.sum_mean + mean
            self.sum_var = second if self.sum_var is None else self.sum_var + second
            self.count += 1
        return F.batch_norm(x, layer.running_mean.data, layer.running_var.data, layer.weight, layer.bias,
                            training=layer.training, momentum=self.momentum, eps=layer.eps)

    def finish_recalibration(self) -> None:
        # equal-sized batches: overall mean = mean of batch means; variance = mean of E[x^2] minus mean^2
        mean = self.sum_mean / self.count
        self.layer.running_mean.data.copy_(mean.float())
        self.layer.running_var.data.copy_((self.sum_var / self.count - mean * mean).clamp_min(0).float())
        self.recalibrating, self.sum_mean, self.sum_var, self.count = False, None, None, 0


class Heads(nn.Module):
    """Linear heads on the standardised scene embedding, plus the SimCLR projection MLP."""

    def __init__(self, dim: int, cache: synth.SpeechCache):
        super().__init__()
        n_phon = len(cache.phonemes)
        sizes = {"source": len(synth.SOURCE_CLASSES), "note_pitch": synth.N_PITCH_BINS, "word": cache.n_words,
                 "speaker": cache.n_speakers, "accent": len(synth.BASE_VOICES), "variant": len(synth.VARIANTS),
                 "phoneme_first": n_phon, "phoneme_last": n_phon, "phoneme_bag": n_phon, "prosody": 2}
        self.standardise = nn.BatchNorm1d(dim, affine=False, momentum=0.01)
        self.linear = nn.ModuleDict({name: nn.Linear(dim, size) for name, size in sizes.items()})
        self.project = nn.Sequential(nn.Linear(dim, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))

    def forward(self, scene: torch.Tensor) -> dict:
        z = self.standardise(scene)
        return {name: head(z) for name, head in self.linear.items()} | {"project": self.project(z), "standardised": z}


def encode_frames(model: HearDualModel, logmel: torch.Tensor) -> torch.Tensor:
    """Encoder on a log-mel (B, n_mels, frames) -> timestamp embeddings (B, D, T)."""
    return model.run_encoder(logmel)


def pool(x: torch.Tensor) -> torch.Tensor:
    """Timestamp embeddings (B, D, T) -> scene embedding (B, 2D): mean and max over time, as the API pools."""
    return torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)


def encode(model: HearDualModel, logmel: torch.Tensor) -> torch.Tensor:
    """Encoder on a log-mel (B, n_mels, frames) -> scene embedding (B, 2D)."""
    return pool(encode_frames(model, logmel))


class Teacher:
    """A trained hear-dual checkpoint whose embeddings a smaller student learns to predict (distillation).

    It must share the student's frontend, hop and padding, so both see the same log-mel frames and give one
    embedding per timestamp. Its timestamp embeddings (B, D_t, T) and scene embeddings (B, 2 D_t) are
    standardised per dimension with fixed float64 statistics measured once, before training, on batches of a
    stream the training never draws: fixed targets, each dimension weighted alike.
    """

    def __init__(self, path: str, student: Spec, batches: list[torch.Tensor]):
        from hear_dual.torch_impl import load_model

        self.model = load_model(path).eval()
        spec = self.model.spec
        for what in ("frontend", "pad_left", "hop_samples", "receptive_field_samples"):
            if getattr(spec, what) != getattr(student, what):
                raise ValueError(f"teacher {spec.name} and student {student.name} differ in {what}: "
                                 f"{getattr(spec, what)!r} vs {getattr(student, what)!r}")
        self.name, self.sha256 = spec.name, self.model.checkpoint_sha256
        with torch.no_grad():
            frames = torch.cat([encode_frames(self.model, b).double() for b in batches])
        scene = pool(frames)
        self.frame_mean, self.frame_std = frames.mean(dim=(0, 2)), frames.std(dim=(0, 2)).clamp_min(1e-6)
        self.scene_mean, self.scene_std = scene.mean(dim=0), scene.std(dim=0).clamp_min(1e-6)
        self.frame_size, self.scene_size = frames.shape[1], scene.shape[1]

    def targets(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            frames = encode_frames(self.model, logmel).double()
            scene = pool(frames)
            frames = (frames - self.frame_mean[:, None]) / self.frame_std[:, None]
            return frames.float(), ((scene - self.scene_mean) / self.scene_std).float()


class DistillHeads(nn.Module):
    """Linear maps from the student's timestamp embeddings (per frame) and standardised scene embedding to the
    teacher's standardised ones. Linear on purpose: what the student keeps must be linearly decodable, which is
    what the HEAR probes use. Training-only, like Heads; not part of the model (the teacher is a plain
    attribute, so its weights stay out of this module's parameters and state)."""

    def __init__(self, student: Spec, teacher: Teacher):
        super().__init__()
        self.teacher = teacher
        self.frames = nn.Linear(student.timestamp_embedding_size, teacher.frame_size)
        self.scene = nn.Linear(student.scene_embedding_size, teacher.scene_size)

    def losses(self, frames: torch.Tensor, standardised_scene: torch.Tensor, logmel: torch.Tensor) -> dict:
        target_frames, target_scene = self.teacher.targets(logmel)
        predicted = self.frames(frames.transpose(1, 2)).transpose(1, 2)
        return {"distill_frames": F.mse_loss(predicted, target_frames),
                "distill_scene": F.mse_loss(self.scene(standardised_scene), target_scene)}


def nt_xent(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR loss; rows [0, B) and [B, 2B) are the two views of the same B clips."""
    p = F.normalize(p, dim=1)
    n = p.shape[0] // 2
    logits = p @ p.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, target)


def masked_bce(logits: torch.Tensor, target: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Multi-label loss on the rows that have labels; also the F1 of thresholded predictions."""
    if not rows.any():
        return logits.sum() * 0.0, float("nan")
    logits, target = logits[rows], target[rows]
    pred = logits > 0
    f1 = 2 * (pred & (target > 0)).sum() / max(1, int(pred.sum() + (target > 0).sum()))
    return F.binary_cross_entropy_with_logits(logits, target), float(f1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float]:
    rows = torch.isfinite(target).all(dim=1)
    if not rows.any():
        return pred.sum() * 0.0, float("nan")
    loss = F.mse_loss(pred[rows], target[rows])
    return loss, loss.item()


def masked_ce(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    keep = target >= 0
    if not keep.any():
        return logits.sum() * 0.0, float("nan"), 0
    loss = F.cross_entropy(logits[keep], target[keep])
    accuracy = (logits[keep].argmax(1) == target[keep]).float().mean().item()
    return loss, accuracy, int(keep.sum())


def quiet_gain(model: HearDualModel, batch: dict) -> torch.Tensor:
    """Mean squared change of the timestamp embeddings per unit log-mel perturbation, on near-silent clips.

    Trained without it, the network became ~100x more sensitive around silence than anywhere else (it only
    ever saw exact digital silence there), which amplified float32 rounding across backends past the parity
    gate on near-silent input. Measured with inference-mode batch norm, as the shipped model runs.
    """
    was_training = model.training
    model.eval()
    x = model.run_encoder(torch.cat([batch["quiet"], batch["quiet"] + batch["quiet_delta"]]))
    model.train(was_training)
    clean, perturbed = x.chunk(2)
    return (perturbed - clean).square().mean() / QUIET_SIGMA**2


def compute_losses(out: dict, batch: dict, temperature: float) -> tuple[dict, dict]:
    losses, stats = {}, {}
    for name in CLASS_TASKS:
        losses[name], stats[f"acc_{name}"], _ = masked_ce(out[name], batch[name])
    losses["phoneme_bag"], stats["f1_phoneme_bag"] = masked_bce(out["phoneme_bag"], batch["phoneme_bag"],
                                                                 batch["word"] >= 0)
    losses["prosody"], _ = masked_mse(out["prosody"], batch["prosody"])
    losses["contrastive"] = nt_xent(out["project"], temperature)
    return losses, stats


def canonical_params(model: HearDualModel) -> dict[str, np.ndarray]:
    return {name: t.detach().cpu().numpy().astype(np.float32).copy()
            for name, t in model.state_dict().items() if not name.startswith("frontend.")}


def lr_at(step: int, total: int, warmup: int, base: float, time_fraction: float = 0.0,
          final_fraction: float = 0.02, slack: float = 0.05) -> tuple[float, str]:
    """Linear warm-up, then cosine decay to final_fraction * base over `total` steps.

    Progress is counted in steps. Only if the wall-clock budget is being used up faster than the steps (by
    more than `slack` of the budget: a slow or busy machine) is it counted in time instead, so that a run the
    budget cuts short still ends at the low learning rate. Returns (lr, "steps" or "time")."""
    effective, driver = float(step), "steps"
    if time_fraction * total > step + slack * total:
        effective, driver = time_fraction * total, "time"
    if effective < warmup:
        return base * (effective + 1) / warmup, driver
    progress = min(1.0, (effective - warmup) / max(1, total - warmup))
    return base * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))), driver


class InputStats:
    """The clip's own log-mel statistics, a target the scene embedding must keep linearly decodable.

    Per mel band, mean and (population) std over the frames centred inside the clip, of the augmented view the
    student sees: what the logmel-stats reference embeds (the long-term spectrum and its spread, which carry
    speaker and recording character). The contrastive loss pushes the other way, towards invariance to the
    augmentations' equalisation and noise; in 1024 dimensions base kept both, in 64 the compact student needs
    to be told. Standardised per dimension with fixed statistics, like the teacher's targets.
    """

    def __init__(self, spec: Spec, n_samples: int, batches: list[torch.Tensor]):
        self.hop, self.half_window = spec.frontend["hop_length"], spec.frontend["win_length"] // 2
        self.start, self.stop = spec.pad_left, spec.pad_left + n_samples
        stats = torch.cat([self.raw(b) for b in batches])
        self.mean, self.std = stats.mean(dim=0), stats.std(dim=0).clamp_min(1e-6)
        self.size = stats.shape[1]

    def raw(self, logmel: torch.Tensor) -> torch.Tensor:
        centres = torch.arange(logmel.shape[2]) * self.hop + self.half_window     # in padded-input samples
        x = logmel[:, :, (centres >= self.start) & (centres < self.stop)].double()
        return torch.cat([x.mean(dim=2), x.std(dim=2, unbiased=False)], dim=1)

    def targets(self, logmel: torch.Tensor) -> torch.Tensor:
        return ((self.raw(logmel) - self.mean) / self.std).float()


class InputStatsHead(nn.Module):
    """A linear map of the standardised scene embedding to the standardised InputStats (training-only)."""

    def __init__(self, scene_size: int, stats: InputStats):
        super().__init__()
        self.stats = stats
        self.linear = nn.Linear(scene_size, stats.size)

    def losses(self, frames: torch.Tensor, standardised_scene: torch.Tensor, logmel: torch.Tensor) -> dict:
        """The same signature as DistillHeads.losses, so the training loop treats every extra head alike."""
        return {"input_stats": F.mse_loss(self.linear(standardised_scene), self.stats.targets(logmel))}


class FrameSpectrum:
    """The top principal components of each timestamp's own log-mel frame, standardised: a target that the
    last k dimensions of the timestamp embedding carry, one component per dimension (FrameSpectrumHead).

    Why: the scene embedding is mean and max over time of the timestamp embeddings, and mean and max commute
    with a per-dimension map but not with a mixing one. A linear decoder of the frames (as distillation uses)
    only makes the scene's mean half carry the spectrum; k dimensions that *are* the frame's spectral components
    give the scene their mean and their maximum over the clip, the long-term spectrum and its spread that the
    logmel-stats reference embeds. Measured before training (python -m training.spectrum_ceiling, FSDD speakers):
    8 exact components in place of 8 of compact run 3's 32 dimensions score 0.990, against run 3's 0.980 and
    logmel-stats' 0.988. Trained, the dimensions matched their targets only loosely and gained about half of
    that (runs 5, 6 and 3 + spectrum in training/README.md). The shipped compact has them exactly: graft.py
    appends them to run 3 as a fixed skip_conv1d (spectrum_kernel).

    The basis is fitted once, in float64, on batches of a stream training never draws: per-band standardised
    frames, their top k right singular vectors, each component scaled to unit variance. The target of output
    frame t is the log-mel averaged over the output hop centred on its timestamp (frames offset + stride * t
    +- stride / 2, the two end ones at half weight): a single 10 ms frame every 40 ms made the max pool noisier
    (0.988 instead of 0.990, in an exploratory measurement while designing it).
    """

    def __init__(self, spec: Spec, n_samples: int, batches: list[torch.Tensor], k: int):
        hop = spec.frontend["hop_length"]
        self.offset, rest = divmod(spec.pad_left - spec.frontend["win_length"] // 2, hop)
        self.stride, rest_stride = divmod(spec.hop_samples, hop)
        if rest or rest_stride or self.stride % 2 or self.offset < self.stride // 2 \
                or not 0 < k <= spec.timestamp_embedding_size:
            raise ValueError(f"--frame-spectrum needs 0 < k <= {spec.timestamp_embedding_size} and timestamps on "
                             f"log-mel frame centres; got k={k}, pad_left={spec.pad_left}, hop={spec.hop_samples}")
        self.k, n_out = k, num_timestamps(spec, n_samples)
        self.hop_weights = [0.5] + [1.0] * (self.stride - 1) + [0.5]      # over frames t - stride/2 .. t + stride/2
        x = torch.cat([self.centre_frames(b)[:, :, :n_out] for b in batches])
        x = x.transpose(1, 2).reshape(-1, spec.frontend["n_mels"])
        self.mean, self.std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
        _, singular, vt = torch.linalg.svd((x - self.mean) / self.std, full_matrices=False)
        self.basis = vt[:k] / (singular[:k, None] / math.sqrt(x.shape[0] - 1))    # unit variance per component

    def centre_frames(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) -> (B, n_mels, T) float64: the log-mel averaged over each timestamp's hop."""
        half = self.stride // 2
        shifted = [logmel[:, :, self.offset + i - half::self.stride].double() for i in range(self.stride + 1)]
        n = min(s.shape[2] for s in shifted)
        return sum(w * s[:, :, :n] for w, s in zip(self.hop_weights, shifted)) / self.stride

    def targets(self, logmel: torch.Tensor, n_out: int) -> torch.Tensor:
        """(B, k, T): component i of each timestamp's frame."""
        x = self.centre_frames(logmel)[:, :, :n_out]
        return torch.einsum("km,bmt->bkt", self.basis, (x - self.mean[:, None]) / self.std[:, None]).float()


def spectrum_kernel(spectrum: FrameSpectrum) -> dict[str, np.ndarray]:
    """The FrameSpectrum targets as a skip_conv1d on the log-mel, float64: weight (k, n_mels, stride + 1) and bias
    (k,). Its windows (SPEC section 4) are the hop-averaged frames of centre_frames, tap j at weight
    taps[j] / stride, so the layer's output t is targets(logmel)[:, :, t] (training.graft ships this)."""
    taps = np.array(spectrum.hop_weights) / spectrum.stride
    scaled = (spectrum.basis / spectrum.std[None, :]).double().numpy()          # per-band standardisation folded in
    return {"weight": scaled[:, :, None] * taps[None, None, :],
            "bias": -scaled @ spectrum.mean.double().numpy()}


class FrameSpectrumHead(nn.Module):
    """No parameters: the last k timestamp dimensions themselves regress the FrameSpectrum components (identity
    map, so that pooling keeps them exactly; the embedding's own scale is about 1, as the targets')."""

    def __init__(self, spectrum: FrameSpectrum):
        super().__init__()
        self.spectrum = spectrum

    def losses(self, frames: torch.Tensor, standardised_scene: torch.Tensor, logmel: torch.Tensor) -> dict:
        k, n_out = self.spectrum.k, frames.shape[2]
        return {"frame_spectrum": F.mse_loss(frames[:, -k:], self.spectrum.targets(logmel, n_out))}


def load_spec(name: str) -> Spec:
    """--spec: a built-in variant's name, or a spec file (e.g. training/specs/hear-dual-compact-stream.json)."""
    if name.endswith(".json"):
        with open(name) as f:
            return Spec.from_json(f.read())
    return Spec.builtin(name)


def split_utterances(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, training) utterance indices of the speech cache: 4% held out, at least 64."""
    order = np.random.default_rng([seed, 3]).permutation(n)
    n_val = max(64, n // 25)
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def fit_logmels(spec: Spec, cache_dir: str, batch: int, clip_seconds: float, speech_fraction: float, seed: int,
                utterances: np.ndarray, n_batches: int = 8) -> list[torch.Tensor]:
    """Log-mel batches of a stream training never draws (stream 4), to fix the extra heads' targets before
    training: the teacher's and the input's standardisation, the frame-spectrum basis."""
    fit = Batches(spec, cache_dir, batch, clip_seconds, speech_fraction, seed, utterances, stream=4)
    return [fit[i]["logmel"] for i in range(n_batches)]


def provenance(spec: Spec, seed: int, steps_done: int, teacher: Teacher | None, input_stats: bool = False,
               init: str | None = None, loss_weights: dict | None = None, frame_spectrum: int = 0) -> dict:
    """What the checkpoint says about where its weights came from (its hear_dual.provenance metadata)."""
    if init:      # a second stage: name the parameters it started from by their hash
        with open(f"{init}.npz", "rb") as f:
            init = {"file": os.path.basename(f"{init}.npz"), "sha256": hashlib.sha256(f.read()).hexdigest()}
    return {"source": "hear-dual training recipe, training/train.py", "spec": spec.name, "seed": seed,
            "steps": steps_done,
            "data": "procedural audio and espeak-ng speech (training/synth.py); no evaluation data",
            **({"teacher": teacher.name, "teacher_sha256": teacher.sha256} if teacher else {}),
            **({"input_stats_head": True} if input_stats else {}),
            **({"frame_spectrum_dims": frame_spectrum} if frame_spectrum else {}),
            **({"initialised_from": init} if init else {}),
            **({"loss_weights": loss_weights} if loss_weights else {}),
            "license": spec.raw["license"]["weights"]}


DEFAULT_WEIGHTS = {"source": 0.5, "note_pitch": 0.5, "word": 1.0, "speaker": 0.5, "accent": 0.5, "variant": 0.5,
                   "phoneme_first": 0.5, "phoneme_last": 0.5, "phoneme_bag": 5.0, "prosody": 0.5, "contrastive": 1.0,
                   "quiet_gain": 1e-3}
# Added to the above when a --teacher is given: per-frame and scene regression onto the teacher's embeddings.
DISTILL_WEIGHTS = {"distill_frames": 2.0, "distill_scene": 2.0}
# Added with --input-stats: the scene embedding regresses the clip's own log-mel statistics (InputStats).
INPUT_STATS_WEIGHTS = {"input_stats": 2.0}
# Added with --frame-spectrum K: the last K timestamp dimensions regress their frame's spectrum (FrameSpectrum).
FRAME_SPECTRUM_WEIGHTS = {"frame_spectrum": 2.0}


def parse_weights(text: str, defaults: dict) -> tuple[dict, dict]:
    """--weights "name=value,..." -> (every loss weight, the ones that differ from `defaults`, the recipe's
    weights for the heads in use). Names not given keep their default; a name no head in use has is refused.
    The changed ones are named in the checkpoint's provenance."""
    given = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in defaults or not value:
            raise SystemExit(f"--weights: expected name=value with a name from {sorted(defaults)}, got {item!r}")
        given[name] = float(value)
    weights = defaults | given
    return weights, {k: v for k, v in weights.items() if v != defaults[k]}


# --- main ---------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", default="hear-dual-base",
                        help="built-in spec of the model to train, or a spec file (training/specs/)")
    parser.add_argument("--teacher", default="",
                        help="distil from this trained checkpoint (a path or a short name such as base); it must "
                             "share the student's frontend, hop and padding")
    parser.add_argument("--init", metavar="STEM",
                        help="start from an earlier run's STEM.npz and STEM-heads.pt (a second stage) instead of "
                             "the seeded initialisation; the heads must be the same")
    parser.add_argument("--input-stats", action="store_true",
                        help="also regress the clip's own log-mel statistics from the scene embedding (InputStats)")
    parser.add_argument("--frame-spectrum", type=int, default=0, metavar="K",
                        help="the last K timestamp dimensions regress the top K principal components of their own "
                             "log-mel frame (FrameSpectrum); 0: off")
    parser.add_argument("--steps", type=int, default=5000, help="schedule length (the run may stop earlier)")
    parser.add_argument("--minutes", type=float, default=45.0, help="wall-clock budget for the whole process")
    parser.add_argument("--reserve-seconds", type=float, default=180.0,
                        help="part of the budget kept for the optional batch-norm re-estimation, saving and export")
    parser.add_argument("--batch", type=int, default=32, help="clips per step (each seen in 2 views)")
    parser.add_argument("--clip-seconds", type=float, default=1.0)
    parser.add_argument("--speech-fraction", type=float, default=0.65)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--bn-momentum", type=float, default=0.05)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--weights", default="",
                        help="loss weights to change, name=value,... (the rest keep DEFAULT_WEIGHTS and the added "
                             "heads' weights)")
    parser.add_argument("--recalibration-batches", type=int, default=0,
                        help="re-estimate batch-norm statistics on this many fresh batches (0: keep the running ones)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--cache", default="/work/trained/espeak-cache")
    parser.add_argument("--out-dir", default="/work/trained")
    parser.add_argument("--name", help="output file stem (default: <spec>-trained)")
    parser.add_argument("--no-export", action="store_true", help="skip the ONNX export (quick tests)")
    parser.add_argument("--replay-lr", metavar="LOG",
                        help="replay the per-step learning rates (and step count) recorded in an earlier run's "
                             ".log.jsonl, e.g. to repeat a run whose schedule was driven by wall-clock time")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    args.name = args.name or f"{os.path.basename(args.spec).removesuffix('.json')}-trained"

    replay = None
    if args.replay_lr:
        with open(args.replay_lr) as f:
            records = [json.loads(line) for line in f if line.strip()]
        replay = next(r["lr_trace"] for r in records if r.get("event") == "trained" and "lr_trace" in r)
        args.steps = len(replay)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    deadline = START + args.minutes * 60 - args.reserve_seconds
    os.makedirs(args.out_dir, exist_ok=True)
    log_path = os.path.join(args.out_dir, f"{args.name}.log.jsonl")
    log_file = open(log_path, "w")

    def log(record: dict) -> None:
        record = {"elapsed_s": round(time.time() - START, 1), **record}
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        print(json.dumps(record), flush=True)

    spec = load_spec(args.spec)
    if args.init:
        with np.load(f"{args.init}.npz") as f:
            params = {k: f[k] for k in f.files}
    else:
        params = seeded_parameters(spec, args.seed)
        params = calibrate_batchnorm(spec, params, calibration_audio(spec))
    model = HearDualModel(spec).load_parameters(params)
    trainers = [BatchNormTrainer(getattr(model, layer.name), args.bn_momentum)
                for layer in spec.layers if layer.op == "batchnorm"]

    cache = synth.SpeechCache(args.cache)
    val_utts, train_utts = split_utterances(len(cache), args.seed)
    heads = Heads(spec.scene_embedding_size, cache)
    teacher, extra_heads = None, []       # training-only heads beyond Heads' own, each with .losses(...)
    if args.teacher or args.input_stats or args.frame_spectrum:
        # Batches of a stream training never draws, to fix the targets' standardisation before training.
        fit = fit_logmels(spec, args.cache, args.batch, args.clip_seconds, args.speech_fraction, args.seed, train_utts)
    if args.teacher:
        teacher = Teacher(args.teacher, spec, fit)
        extra_heads.append(DistillHeads(spec, teacher))
        heads.add_module("distill", extra_heads[-1])       # trained, saved and logged with the other heads
    if args.input_stats:
        input_stats = InputStats(spec, int(round(args.clip_seconds * spec.sample_rate)), fit)
        extra_heads.append(InputStatsHead(spec.scene_embedding_size, input_stats))
        heads.add_module("input_stats", extra_heads[-1])
    if args.frame_spectrum:
        spectrum = FrameSpectrum(spec, int(round(args.clip_seconds * spec.sample_rate)), fit, args.frame_spectrum)
        extra_heads.append(FrameSpectrumHead(spectrum))
        heads.add_module("frame_spectrum", extra_heads[-1])
    if args.init:
        heads.load_state_dict(torch.load(f"{args.init}-heads.pt", weights_only=True)["heads"])

    encoder_params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in list(encoder_params) + list(heads.parameters()) if p.ndim > 1]
    no_decay = [p for p in list(encoder_params) + list(heads.parameters()) if p.ndim <= 1 and p.requires_grad]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)

    data = Batches(spec, args.cache, args.batch, args.clip_seconds, args.speech_fraction, args.seed, train_utts,
                   length=args.steps, stream=1)
    loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=args.workers,
                                         prefetch_factor=4 if args.workers else None,
                                         persistent_workers=False)
    extra = ((DISTILL_WEIGHTS if args.teacher else {}) | (INPUT_STATS_WEIGHTS if args.input_stats else {})
             | (FRAME_SPECTRUM_WEIGHTS if args.frame_spectrum else {}))
    weights, changed_weights = parse_weights(args.weights, DEFAULT_WEIGHTS | extra)
    log({"event": "start", "args": vars(args), "torch": torch.__version__, "python": sys.version.split()[0],
         "machine": platform.machine(), "cpus": os.cpu_count(), "n_train_utterances": len(train_utts),
         "n_val_utterances": len(val_utts), "n_words": cache.n_words, "n_speakers": cache.n_speakers,
         "n_phonemes": len(cache.phonemes), "weights": weights,
         **({"teacher": teacher.name, "teacher_sha256": teacher.sha256} if teacher else {})})

    model.train()
    heads.train()
    running = {}
    step = 0
    t_loop = time.time()
    stopped_by = "steps"
    schedule_driver, lr_trace = {}, []
    for step, batch in enumerate(loader):
        if time.time() > deadline:
            stopped_by = "time budget"
            break
        time_fraction = (time.time() - t_loop) / max(1e-9, deadline - t_loop)
        lr, driver = lr_at(step, args.steps, args.warmup, args.lr, time_fraction)
        if replay is not None:
            lr, driver = replay[step], "replay"
        lr_trace.append(float(lr))
        schedule_driver[driver] = schedule_driver.get(driver, 0) + 1
        for group in optimiser.param_groups:
            group["lr"] = lr
        frames = encode_frames(model, batch["logmel"])
        out = heads(pool(frames))
        losses, stats = compute_losses(out, batch, args.temperature)
        for head in extra_heads:
            losses |= head.losses(frames, out["standardised"], batch["logmel"])
        losses["quiet_gain"] = quiet_gain(model, batch)
        total = sum(weights[k] * losses[k] for k in weights)
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(encoder_params + list(heads.parameters()), 5.0)
        optimiser.step()
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at step {step}")
        values = {f"loss_{k}": v.item() for k, v in losses.items()} | {"loss_total": total.item()} | stats
        for k, v in values.items():
            if not math.isnan(v):
                running[k] = v if k not in running else 0.95 * running[k] + 0.05 * v
        if step % args.log_every == 0 or step == args.steps - 1:
            log({"step": step, "lr": round(lr, 6), "schedule": driver,
                 "steps_per_s": round((step + 1) / (time.time() - t_loop), 3), "grad_norm": round(grad_norm.item(), 3),
                 **{k: round(v, 4) for k, v in running.items()}})
    else:
        step = args.steps
    steps_done = step
    train_seconds = time.time() - t_loop
    del loader

    # Optionally re-estimate the batch-norm running statistics on fresh training-distribution batches (network
    # frozen). Off by default: the quiet-gain penalty was trained against the running statistics, and exact
    # re-estimated ones moved the network's operating point at silence enough to undo it (gain 0.9 -> 1800).
    if args.recalibration_batches:
        recal = Batches(spec, args.cache, args.batch, args.clip_seconds, args.speech_fraction, args.seed,
                        train_utts, stream=2)
        with torch.no_grad():
            for t in trainers:
                t.recalibrating = True
            model.train()
            for i in range(args.recalibration_batches):
                encode(model, recal[i]["logmel"])
            for t in trainers:
                t.finish_recalibration()
    model.eval()
    heads.eval()

    # Held-out utterances (never trained on), inference-mode network: the training heads' metrics.
    val = Batches(spec, args.cache, 64, args.clip_seconds, 1.0, args.seed, val_utts, stream=3)
    heldout = {}
    with torch.no_grad():
        for i in range(4):
            frames = encode_frames(model, val[i]["logmel"])
            out = heads(pool(frames))
            _, stats = compute_losses(out, val[i], args.temperature)
            stats["quiet_gain"] = quiet_gain(model, val[i]).item()
            for head in extra_heads:
                stats |= {k: v.item() for k, v in head.losses(frames, out["standardised"], val[i]["logmel"]).items()}
            for k, v in stats.items():
                if k != "acc_source" and k != "acc_note_pitch":
                    heldout.setdefault(k, []).append(v)
    heldout = {k: round(float(np.mean(v)), 4) for k, v in heldout.items()}

    params = canonical_params(model)
    for name, array in params.items():
        if not np.isfinite(array).all():
            raise FloatingPointError(f"{name} is not finite")
        if name.endswith("running_var") and not (array > 0).all():
            raise ValueError(f"{name} has a non-positive variance")
    npz_path = os.path.join(args.out_dir, f"{args.name}.npz")
    np.savez(npz_path, **params)
    torch.save({"heads": heads.state_dict(), "args": vars(args)}, os.path.join(args.out_dir, f"{args.name}-heads.pt"))
    summary = {"event": "trained", "steps_done": steps_done, "stopped_by": stopped_by,
               "train_seconds": round(train_seconds, 1), "lr_schedule_steps_by": schedule_driver,
               "lr_trace": lr_trace,
               "final_running_losses": {k: round(v, 4) for k, v in running.items()},
               "heldout_speech": heldout,
               "params": npz_path}
    log(summary)

    if not args.no_export:
        onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")
        write_checkpoint(spec, params, onnx_path, provenance(spec, args.seed, steps_done, teacher,
                                                                   args.input_stats, args.init, changed_weights,
                                                                   args.frame_spectrum))
        from hear_dual.torch_impl import get_scene_embeddings, load_model
        loaded = load_model(onnx_path)
        probe = synth.augment(synth.synthetic_clip(16000, np.random.default_rng(5))[0], np.random.default_rng(6))
        with torch.no_grad():
            want = encode(model, model.frontend(F.pad(torch.from_numpy(probe[None]), data.pad)))
        got = get_scene_embeddings(probe[None], loaded)
        log({"event": "exported", "onnx": onnx_path, "max_abs_diff_vs_training_model": float((got - want).abs().max())})
    log({"event": "done", "total_seconds": round(time.time() - START, 1)})


if __name__ == "__main__":
    main()
