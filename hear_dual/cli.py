"""The `hear-dual` command line."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _spec_and_hash(weights: str):
    from hear_dual.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(weights)
    return checkpoint.spec, checkpoint.path, checkpoint.sha256


def cmd_info(args) -> int:
    spec, path, sha = _spec_and_hash(args.weights)
    info = spec.summary() | {"checkpoint": path, "checkpoint_sha256": sha}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def demo_audio(sample_rate: int, seconds: float = 3.0) -> np.ndarray:
    """Two generated test sounds: a tone mixture and a chirp over pink noise."""
    from hear_dual.signals import make_signal

    n = int(seconds * sample_rate)
    chirp = 0.6 * make_signal("chirp", n, sample_rate) + 0.3 * make_signal("pink_noise", n, sample_rate, seed=1)
    return np.stack([make_signal("tone_mix", n, sample_rate, seed=7), chirp]).astype(np.float32)


def cmd_demo(args) -> int:
    """The main job: embed a generated test sound with both backends and show that they agree."""
    import hear_dual.tf_impl as tf_backend
    import hear_dual.torch_impl as torch_backend
    from hear_dual.parity import agreement

    torch_model = torch_backend.load_model(args.weights)
    tf_model = tf_backend.load_model(args.weights)
    spec = torch_model.spec
    audio = demo_audio(spec.sample_rate, args.seconds)
    print(f"model {spec.name} (spec {spec.version}, {spec.sha256[:12]}) from {torch_model.checkpoint_path}")
    print(f"audio: {audio.shape[0]} generated sounds x {audio.shape[1]} samples at {spec.sample_rate} Hz")

    outputs = {}
    for name, backend, model in (("torch", torch_backend, torch_model), ("tf", tf_backend, tf_model)):
        embeddings, timestamps = backend.get_timestamp_embeddings(audio, model)
        scene = backend.get_scene_embeddings(audio, model)
        outputs[name] = [np.asarray(t) for t in (embeddings, timestamps, scene)]
        e, t, s = outputs[name]
        print(f"{name:>5}: timestamp embeddings {e.shape} {e.dtype}, timestamps {t.shape} "
              f"({t[0, 0]:.0f} .. {t[0, -1]:.0f} ms, hop {spec.hop_ms:g} ms), scene {s.shape}")

    (te, tt, ts), (fe, ft, fs) = outputs["torch"], outputs["tf"]
    stamp = agreement(te, fe, spec.tolerance, spec.min_cosine)
    scene = agreement(ts, fs, spec.tolerance, spec.min_cosine)
    same_times = np.array_equal(tt, ft)
    print(f"torch vs tf: timestamp embeddings max |diff| {stamp.max_abs_diff:.3g} "
          f"(relative {stamp.max_rel_diff:.3g}), scene max |diff| {scene.max_abs_diff:.3g} "
          f"(relative {scene.max_rel_diff:.3g}), min cosine {min(stamp.min_cosine, scene.min_cosine):.12f}, "
          f"timestamps identical: {same_times}")
    ok = stamp.passed and scene.passed and same_times
    print(f"parity gate (relative <= {spec.tolerance:g}, cosine >= {spec.min_cosine}): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hear-dual", description="hear-dual: one spec, torch and TF backends.")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="summary of a model's spec and checkpoint")
    info.add_argument("--weights", default="", help="checkpoint path (default: shipped hear-dual-base)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="embed a generated test sound with torch and TF and compare them")
    demo.add_argument("--weights", default="", help="checkpoint path (default: shipped hear-dual-base)")
    demo.add_argument("--seconds", type=float, default=3.0, help="length of the generated sounds")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"hear-dual: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
