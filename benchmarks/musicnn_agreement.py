"""musicnn through hear-dual against musicnn's own code (hear_dual.originals.musicnn: its TF1 network and weights,
its extractor's frontend lines): each backend and the float64 reference, given the same log-mel (the networks
alone) and end to end (librosa's float32 frontend and its float16 roundings included), on generated signals, FSDD
speech and generated music; plus how many float16 roundings of the mel power differ between librosa's float32 and
SPEC section 3.3's float64, and how many clips musicnn's line overflows to infinity under numpy 2.

    python benchmarks/musicnn_agreement.py --models musicnn-mtt,vgg-mtt --json results/musicnn-vs-original.json
    python benchmarks/musicnn_agreement.py --models musicnn-msd,vgg-msd --json results/musicnn-vs-original-msd.json

Each figure is the worst max_rel_diff (SPEC section 9: max |a - b| / max(1, max |ref|)) over the inputs of a group,
timestamp and scene embeddings together; the gate is 2e-5. Needs the test extras (musicnn, tf-keras).
"""

from __future__ import annotations

import argparse

import numpy as np

MODELS = {"musicnn-mtt": "MTT_musicnn", "vgg-mtt": "MTT_vgg", "musicnn-msd": "MSD_musicnn", "vgg-msd": "MSD_vgg"}
SECONDS = 3.5


def groups(sample_rate: int = 16000) -> dict[str, np.ndarray]:
    """Input batches by group: each generated kind (2 sounds), FSDD recordings, generated music."""
    from hear_dual.golden import FSDD_CLIPS, golden_input
    from hear_dual.parity import input_batch
    from hear_dual.signals import MUSIC_KINDS, SIGNAL_KINDS, music_clip

    n = int(SECONDS * sample_rate)
    out = {"generated signals": np.concatenate([input_batch(kind, 2, n, sample_rate, seed=3) for kind in SIGNAL_KINDS])}
    fsdd = [golden_input(f"fsdd-{clip}") for clip in FSDD_CLIPS]
    if fsdd[0] is not None:
        out["FSDD speech"] = np.stack([np.pad(c, (0, n - len(c))) if len(c) < n else c[:n] for c in fsdd])
    out["generated music"] = np.stack([music_clip(kind, n, sample_rate, seed) for kind in MUSIC_KINDS
                                       for seed in range(2)])
    return out


def worst(a: np.ndarray, b: np.ndarray) -> float:
    from hear_dual.parity import agreement

    return agreement(a, b, 1.0, 0.0).max_rel_diff


def flips(audio: np.ndarray, spec, constants) -> tuple[int, int, float]:
    """(values whose float16 mel differs from librosa's, all values, worst |difference| of the log-mel)."""
    import hear_dual.originals.musicnn as original
    import hear_dual.reference as reference

    differ = total = 0
    largest = 0.0
    for clip in audio:
        ours = reference.mel_power(np.pad(clip.astype(np.float64), (256, 256))[None], spec, constants)[0]
        q = np.minimum(ours.astype(np.float32), 65504).astype(np.float16)
        theirs = original.log_mel(clip)
        y = reference.compress(ours, spec.frontend["compression"])
        differ += int((np.log10(10000 * q.astype(np.float32) + 1) != theirs).sum())
        total += q.size
        largest = max(largest, float(np.abs(y - theirs).max()))
    return differ, total, largest


def measure(name: str, model: str) -> dict:
    import hear_dual.originals.musicnn as original
    import hear_dual.reference as reference
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.parity import NATIVE, Backend, encoders_on_frontend_output
    from hear_dual.weights import resolve

    path = resolve(name)
    checkpoint = read_checkpoint(path)
    network = original.load_model(model)
    encoders = encoders_on_frontend_output(path)
    backends = {b: Backend(b, path) for b in NATIVE}
    float64 = reference.load_model(path)
    result = {}
    for group, audio in groups().items():
        patches = np.concatenate([original.log_mel(clip)[None, :187] for clip in audio]).astype(np.float32)
        want = original.frame_features(network, patches)
        same = {b: worst(want, encode(patches)) for b, encode in encoders.items()}
        want_e = original.get_timestamp_embeddings(audio, network)[0].numpy()
        want_s = original.get_scene_embeddings(audio, network).numpy()
        end = {b: max(worst(want_e, e), worst(want_s, s)) for b, (e, _, s) in
               ((b, backend.embed(audio)) for b, backend in backends.items())}
        e64 = reference.get_timestamp_embeddings(audio, float64)[0]
        end["float64"] = max(worst(want_e, e64), worst(want_s, reference.get_scene_embeddings(audio, float64)))
        differ, total, largest = flips(audio, checkpoint.spec, checkpoint.constants)
        overflow = sum(bool(np.isinf(original.log_mel(clip, numpy2_float16=True)).any()) for clip in audio)
        result[group] = {"clips": len(audio), "same_log_mel": same, "end_to_end": end, "log_mel_values": total,
                         "log_mel_values_differing": differ, "log_mel_worst_difference": largest,
                         "numpy2_overflow_clips": overflow}
        print(f"{name} {group}: same log-mel {max(same.values()):.3g}, end to end {max(end.values()):.3g}, "
              f"{differ}/{total} log-mel values differ")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {list(MODELS)}")
    parser.add_argument("--json", metavar="PATH", help="write the results (with their meta) to PATH")
    args = parser.parse_args(argv)
    from hear_dual.results import environment, write_json_atomic

    report = {"meta": environment(), "models": {name: measure(name, MODELS[name])
                                                for name in args.models.split(",") if name}}
    if args.json:
        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
