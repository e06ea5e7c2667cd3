"""What k timestamp dimensions that *are* their frame's spectrum (train.FrameSpectrum) would give a model's
scene on an FSDD task: the model's own first 32 - k timestamp dimensions (their mean and max halves of the
scene) plus the exact top-k FrameSpectrum components of each timestamp, mean and max pooled, scored by the
evaluation's probe.

    python -m training.spectrum_ceiling --model hear_dual.torch_impl:compact --k 8 --k 16

A diagnostic for the compact track, not part of any recipe. It measures what --frame-spectrum K could buy if
training matched its targets exactly and left the other dimensions as they are; the basis is the recipe's own
(fitted on the training stream, seed 0; needs the espeak-ng cache), FSDD is only scored.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from hear_dual.audio import num_timestamps, padded_input_length
from hear_dual.datasets import read_clip
from hear_dual.evaluation import labelled
from hear_dual.evaluation.models import load, model_ref
from hear_dual.torch_impl.model import LogMel
from training import synth, train


def spectrum_scene(spectrum: train.FrameSpectrum, frontend: LogMel, spec, clip: np.ndarray) -> np.ndarray:
    """(2k,): mean and max over the clip's timestamps of their FrameSpectrum components (as training pads)."""
    n = len(clip)
    t = num_timestamps(spec, n)
    pad = (spec.pad_left, padded_input_length(spec, t) - spec.pad_left - n)
    with torch.no_grad():
        targets = spectrum.targets(frontend(F.pad(torch.from_numpy(clip[None]), pad)), t).double()
    return train.pool(targets)[0].numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="MODULE[:WEIGHTS] of a hear-dual-compact")
    parser.add_argument("--task", default="fsdd-speaker", help="a built-in FSDD task")
    parser.add_argument("--k", type=int, action="append", help="spectrum dimensions (default 8 and 16)")
    parser.add_argument("--cache", default="/work/trained/espeak-cache", help="the training speech cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    recipe = train.build_parser().parse_args(["--seed", str(args.seed), "--spec", "hear-dual-compact"])
    spec = train.Spec.builtin(recipe.spec)
    _, train_utts = train.split_utterances(len(synth.SpeechCache(args.cache)), args.seed)
    fit = train.fit_logmels(spec, args.cache, recipe.batch, recipe.clip_seconds, recipe.speech_fraction, args.seed,
                            train_utts)
    task = labelled.resolve_task(args.task)
    data = labelled.load_dataset(task, labelled.resolve_data("fsdd"))
    folds = labelled.make_folds(task, data.labels, data.groups, seed=args.seed)
    clips = [read_clip(f, spec.sample_rate).astype(np.float32) for f in data.files]
    frontend, half = LogMel(spec), spec.timestamp_embedding_size

    def score(embeddings: np.ndarray) -> float:
        return labelled.cross_validate(embeddings, data.labels, folds, "logreg", args.seed)["mean"]

    print(f"{args.task}, logreg probe; 'own' = the model's scene, 'k = K' = its first {half} - K timestamp "
          f"dimensions (mean and max) plus K exact spectrum components (mean and max)")
    exact = {}                    # k -> the exact components' scene, the same for every model
    for k in args.k or [8, 16]:
        spectrum = train.FrameSpectrum(spec, int(round(recipe.clip_seconds * spec.sample_rate)), fit, k)
        exact[k] = np.stack([spectrum_scene(spectrum, frontend, spec, c) for c in clips])
    alone = {k: score(e) for k, e in exact.items()}
    for name in args.model:
        module, _, weights = name.partition(":")
        scene = np.asarray(labelled.get_embeddings(load(model_ref(module, weights)), data.files)[0], np.float64)
        row = [f"own {score(scene):.3f}"]
        for k, e in exact.items():
            kept = np.concatenate([scene[:, :half - k], scene[:, half:2 * half - k], e], axis=1)
            row.append(f"k = {k} {score(kept):.3f} (spectrum alone {alone[k]:.3f})")
        print(f"{name}: " + ", ".join(row))


if __name__ == "__main__":
    main()
