"""`hear-dual evaluate`: any HEAR 2021 module, by import name, on HEAR task folders or on a labelled folder.

    hear-dual evaluate hear_dual.torch_impl tasks/spoken_digit tasks/my_events --out results/
    hear-dual evaluate hear_dual.torch_impl fsdd --task fsdd-digit --reference randproj

HEAR task folders (no --task): DATA is one or more task folders as hearpreprocess writes them, or folders of
them. Each task is embedded the way heareval embeds it (cached, resumable), then the organizers' downstream
protocol runs: an MLP per grid point on the first fold rotation, the best one retrained on every rotation,
scored with the task's own scores (see hear_dual.evaluation and docs/guide/evaluate.md for every difference from
heareval). Each (task, model) result goes to OUT/<task>/<model>.json, and OUT/results.md and results.json are
rebuilt from every result under OUT, so runs of several modules (say torch_impl and tf_impl) into one OUT
make one table. A finished result is not recomputed (--overwrite does); event tasks also get
OUT/<task>/<model>.events.png when matplotlib is installed.

Labelled folders (with --task): the shallow-probe evaluation, see hear_dual.evaluation.labelled.
"""

from __future__ import annotations

import argparse
import json
import sys

from hear_dual.command import standalone
from hear_dual.evaluation import labelled
from hear_dual.evaluation.models import REFERENCES, load, model_ref
from hear_dual.evaluation.protocol import GRIDS
from hear_dual.extras import require
from hear_dual.results import environment, jsonable


def cmd_labelled(args) -> int:
    if len(args.data) != 1:
        raise ValueError(f"--task evaluates one labelled folder; got {len(args.data)} DATA arguments")
    generic = {"label_from": args.label_from, "label_pattern": args.label_pattern, "label_group": args.label_group,
               "group_group": args.group_group, "folds": args.folds, "grouped": args.grouped}
    tasks = [labelled.resolve_task(name, **generic) for name in dict.fromkeys(args.task)]
    models = [model_ref(args.module, args.weights)] + [model_ref(r) for r in dict.fromkeys(args.reference or [])]
    report = labelled.evaluate(models, tasks, args.data[0], probe=args.probe,
                               seed=0 if args.seed is None else args.seed, cache_dir=args.cache_dir,
                               use_cache=not args.no_cache, batch_size=args.batch_size,
                               batch_seconds=args.batch_seconds, shuffle_labels=args.shuffle_labels,
                               progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(jsonable(report | {"meta": environment()}), indent=2, allow_nan=False))
    else:
        print(labelled.format_table(report, details=not args.brief))
    return 0


def _finished(path, loaded, args) -> bool:
    if args.overwrite or not path.is_file():
        return False
    old = json.loads(path.read_text())
    return (old.get("model", {}).get("weights_id") == loaded.weights_id
            and old.get("protocol") == {"grid": args.grid, "grid_points": args.grid_points, "seed": args.seed})


def cmd_hear(args) -> int:
    from hear_dual.evaluation import report
    from hear_dual.evaluation.run import evaluate_task
    from hear_dual.evaluation.tasks import find_tasks, read_task

    args.seed = 42 if args.seed is None else args.seed
    tasks = [read_task(path) for path in find_tasks(args.data)]     # all checked before the long part starts
    refs = [model_ref(args.module, args.weights)] + [model_ref(r) for r in dict.fromkeys(args.reference or [])]
    progress = not args.json and sys.stderr.isatty()
    results = []
    for ref in refs:
        loaded = load(ref)
        for task in tasks:
            path = report.result_path(args.out, task.name, ref.label)
            if _finished(path, loaded, args):
                print(f"{task.name} / {ref.label}: done before, kept {path} (--overwrite recomputes)", file=sys.stderr)
                results.append(json.loads(path.read_text()))
                continue
            result = evaluate_task(loaded, task, args.grid, args.grid_points, args.seed, args.cache_dir,
                                   not args.no_cache, progress)
            report.write_result(args.out, result)
            if task.embedding_type == "event":
                report.plot_events(result, path.with_suffix(".events.png"))
            results.append(result)
    markdown_path, _ = report.write_tables(args.out)
    if args.json:
            print(json.dumps(jsonable(results), indent=1, allow_nan=False))
    else:
        print(report.markdown(results))
        print(f"results under {args.out} (table: {markdown_path})")
    return 0


def cmd_evaluate(args) -> int:
    require("sklearn", "hear-dual evaluate")          # the probes, the folds and the scores
    return cmd_labelled(args) if args.task else cmd_hear(args)


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate", help="HEAR module on HEAR task folders (the organizers' protocol) or a labelled folder (--task)",
        description="Evaluate a HEAR 2021 module. Without --task, DATA are HEAR task folders and the organizers' "
                    "protocol runs (MLP grid, early stopping, folds, the task's scores). With --task, DATA is a "
                    "labelled folder and a shallow probe runs in k folds (presets fsdd-digit, fsdd-speaker).",
        epilog=__doc__ + "\n" + labelled.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", metavar="MODULE",
                        help=f"HEAR module import name, or a reference: {', '.join(REFERENCES)}")
    parser.add_argument("data", metavar="DATA", nargs="+",
                        help='HEAR task folders (or folders of them); with --task one labelled folder, "fsdd" finds '
                             "FSDD")
    parser.add_argument("--weights", default="", metavar="P", help="passed to MODULE's load_model")
    parser.add_argument("--reference", action="append", choices=list(REFERENCES), metavar="R",
                        help=f"also evaluate a reference (repeatable): {', '.join(REFERENCES)}")
    parser.add_argument("--seed", type=int, default=None,
                        help="HEAR tasks: torch seed of every training run (default 42, heareval's); labelled "
                             "folders: folds and probe (default 0)")
    parser.add_argument("--cache-dir", default=None, metavar="D",
                        help="embedding cache (default $HEAR_DUAL_CACHE or ~/.cache/hear-dual/embeddings)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")

    hear = parser.add_argument_group("HEAR task folders")
    hear.add_argument("--out", default="hear-results", metavar="DIR", help="results folder (default hear-results)")
    hear.add_argument("--grid", choices=list(GRIDS), default="default", help="heareval's grids (default 'default')")
    hear.add_argument("--grid-points", type=int, default=8, metavar="N", help="grid points tried (default 8)")
    hear.add_argument("--overwrite", action="store_true", help="recompute results that are already in --out")

    probe = parser.add_argument_group("labelled folders (--task)")
    probe.add_argument("--task", action="append", metavar="NAME",
                       help=f"repeatable; presets {', '.join(labelled.PRESETS)}, any other name is a generic task")
    probe.add_argument("--probe", choices=labelled.PROBES, default="logreg", help="logreg (default) or mlp")
    probe.add_argument("--label-from", choices=["folder"], default=None,
                       help="generic tasks: label = first sub-folder under DATA (the default)")
    probe.add_argument("--label-pattern", metavar="REGEX", help="generic tasks: regex matched on file names")
    probe.add_argument("--label-group", type=int, default=1, metavar="N", help="regex group of the label (1)")
    probe.add_argument("--group-group", type=int, default=None, metavar="M",
                       help="regex group naming the group to hold out (with --grouped)")
    probe.add_argument("--folds", type=int, default=None, metavar="K",
                       help=f"generic tasks: folds (default {labelled.DEFAULT_FOLDS}; grouped: one per group)")
    probe.add_argument("--grouped", action="store_true", help="generic tasks: grouped folds (hold out groups)")
    probe.add_argument("--batch-size", type=int, default=labelled.DEFAULT_BATCH_SIZE, metavar="N",
                       help=f"clips per batch, zero-padded to the longest (default {labelled.DEFAULT_BATCH_SIZE})")
    probe.add_argument("--batch-seconds", type=float, default=labelled.DEFAULT_BATCH_SECONDS, metavar="S",
                       help=f"at most this much padded audio per batch (default {labelled.DEFAULT_BATCH_SECONDS:g})")
    probe.add_argument("--shuffle-labels", action="store_true",
                       help="control: permute the labels (seeded); accuracy should fall to chance")
    probe.add_argument("--brief", action="store_true", help="only the table, no per-fold details")
    parser.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    """`hear-dual evaluate` on its own (`python -m hear_dual.evaluate`): argv holds the arguments after `evaluate`."""
    return standalone("evaluate", add_evaluate_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
