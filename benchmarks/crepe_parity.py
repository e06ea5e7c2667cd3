"""CREPE through hear-dual against code nobody here wrote: every backend against torchcrepe.embed and against
the float64 reference, on generated signals, FSDD speech and near-constant frames; torchcrepe against float64.

    python benchmarks/crepe_parity.py --model tiny --json results/crepe-vs-torchcrepe-tiny.json
    python benchmarks/crepe_parity.py --model full --no-tf2onnx --seconds 0.99 \
        --json results/crepe-vs-torchcrepe-full.json

Each cell is the worst max_rel_diff (SPEC section 9: max |a - b| / max(1, max |ref|)) over the inputs of its
row; the gate is 2e-5. Inputs: 2 sounds x 2.74 s (--seconds) of each generated kind, the three golden FSDD recordings
(upsampled 2x exactly) and three near-constant signals, where torchcrepe's float32 normalisation is inexact.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np


def inputs(seconds: float) -> dict[str, list[np.ndarray]]:
    from hear_dual.golden import FSDD_CLIPS, golden_input
    from hear_dual.parity import input_batch
    from hear_dual.signals import SIGNAL_KINDS

    rng = np.random.default_rng(0)
    n_samples = int(seconds * 16000)
    groups = {"generated signals": [input_batch(kind, 2, n_samples, 16000, seed=3) for kind in SIGNAL_KINDS]}
    fsdd = [golden_input(f"fsdd-{clip}") for clip in FSDD_CLIPS]
    if fsdd[0] is not None:
        groups["FSDD speech"] = [clip[None] for clip in fsdd]
    n = 4000        # the cases of parity_tests/test_crepe.py: a DC offset with faint noise, a slow ramp
    near_constant = [0.5 + 1e-5 * rng.standard_normal(n), 0.9 + 1e-6 * rng.standard_normal(n),
                     np.linspace(0.3, 0.3001, n)]
    groups["near-constant frames"] = [np.stack(near_constant).astype(np.float32)]
    return groups


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--no-tf2onnx", action="store_true", help="skip the tf2onnx export of tf_impl's graph")
    parser.add_argument("--seconds", type=float, default=2.74, help="length of each generated sound")
    parser.add_argument("--json", metavar="PATH", help="write the table (with its meta) to PATH: docs/models/crepe.md")
    args = parser.parse_args(argv)

    import hear_dual.reference as reference
    from hear_dual.converters.torchcrepe import torchcrepe_embeddings
    from hear_dual.parity import BACKENDS, Backend, agreement
    from hear_dual.weights import resolve

    weights = resolve(f"crepe-{args.model}")
    names = [b for b in BACKENDS if not (args.no_tf2onnx and b == "tf2onnx")]
    with tempfile.TemporaryDirectory() as tmp:
        graph = None
        if "tf2onnx" in names:
            from hear_dual.tf_export import export_tf_graph

            graph = export_tf_graph(weights, os.path.join(tmp, "tf2onnx.onnx"))
        backends = {name: Backend(name, weights, graph) for name in names}
        exact_model = reference.load_model(weights)
        columns = [f"{b} vs torchcrepe" for b in names] + [f"{b} vs float64" for b in names] + ["torchcrepe vs float64"]
        print(f"CREPE {args.model}: worst max_rel_diff per input group (gate 2e-5)\n")
        print("| inputs | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        table = {}
        for group, batches in inputs(args.seconds).items():
            worst = dict.fromkeys(columns, 0.0)
            for audio in batches:
                theirs = torchcrepe_embeddings(audio, args.model)
                exact, _ = reference.get_timestamp_embeddings(audio, exact_model)
                for name, backend in backends.items():
                    ours = backend.embed(audio)[0]
                    for col, ref in ((f"{name} vs torchcrepe", theirs), (f"{name} vs float64", exact)):
                        worst[col] = max(worst[col], agreement(ref, ours, 1, 0).max_rel_diff)
                worst["torchcrepe vs float64"] = max(worst["torchcrepe vs float64"],
                                                     agreement(exact, theirs, 1, 0).max_rel_diff)
            print(f"| {group} | " + " | ".join(f"{worst[c]:.2g}" for c in columns) + " |", flush=True)
            table[group] = worst
    if args.json:
        from hear_dual.results import environment, write_json_atomic

        write_json_atomic(args.json, {"meta": environment(), "model": f"crepe-{args.model}", "seconds": args.seconds,
                                      "columns": columns, "groups": table})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
