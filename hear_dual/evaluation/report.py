"""Results a person can look at: one JSON per (task, model), a combined results.json and results.md, and for
event tasks a plot of predicted against true events for a few test clips (matplotlib, optional).

    OUT/<task>/<model>.json        everything evaluate_task returned (folds, grid, examples)
    OUT/<task>/<model>.events.png  event tasks, when matplotlib is installed
    OUT/results.json, results.md   every result under OUT, one table per task, rebuilt after each run
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hear_dual.results import jsonable, write_json_atomic


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def result_path(out_dir, task_name: str, model_label: str) -> Path:
    return Path(out_dir) / slug(task_name) / f"{slug(model_label)}.json"


def write_result(out_dir, result: dict) -> Path:
    path = result_path(out_dir, result["task"], result["model"]["label"])
    write_json_atomic(path, result)      # an interrupted run never leaves half a result that a rerun would trust
    return path


def collect(out_dir) -> list[dict]:
    results = []
    for path in sorted(Path(out_dir).glob("*/*.json")):
        result = json.loads(path.read_text())
        if isinstance(result, dict) and "aggregate" in result:
            results.append(result)
    return results


def _cell(aggregate: dict, name: str) -> str:
    entry = aggregate.get(name)
    if entry is None or entry["mean"] is None:
        return "-"
    return f"{entry['mean']:.3f}" + ("" if entry["std"] is None else f" ± {entry['std']:.3f}")


def markdown(results: list[dict]) -> str:
    """One table per task: a row per model, a column per score (mean ± std over folds)."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in results):
        rows = [r for r in results if r["task"] == task]
        first = rows[0]
        names = first["scores"]
        folds = len(first["folds"])
        lines += [f"### {task}", "",
                  f"{first['embedding_type']} task, {first['prediction_type']}, {first['split_mode']} "
                  f"({folds} fold{'s' if folds > 1 else ''}); primary score {first['primary_score']}; "
                  f"files per split {first['n_files']}", "",
                  "| model | kind | dim | " + " | ".join(names) + " | best grid point | epochs |",
                  "|---|---|---|" + "---|" * len(names) + "---|---|"]
        for r in rows:
            conf = r["best_conf"]
            best = f"{conf['hidden_layers']}x{conf['hidden_dim']}, lr {conf['lr']:g}, {conf['initialization']}"
            epochs = ", ".join(str(f["epoch"] + 1) for f in r["folds"])
            lines.append(f"| {r['model']['label']} | {r['model']['kind']} | {r['embedding_size']} | "
                         + " | ".join(_cell(r["aggregate"], n) for n in names) + f" | {best} | {epochs} |")
        lines.append("")
    return "\n".join(lines)


def write_tables(out_dir) -> tuple[Path, Path]:
    results = collect(out_dir)
    out = Path(out_dir)
    summary = [{k: r[k] for k in ("task", "model", "scores", "primary_score", "aggregate", "protocol", "folds")}
               for r in results]
    (out / "results.json").write_text(json.dumps(jsonable(summary), indent=1, allow_nan=False))
    (out / "results.md").write_text(markdown(results))
    return out / "results.md", out / "results.json"


def plot_events(result: dict, path) -> Path | None:
    """Predicted (top lane of each label) against true events (bottom lane) for the example clips; None
    without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    examples = result["examples"]
    if not examples:
        return None
    labels = sorted({e["label"] for ex in examples for e in ex["target"] + ex["predicted"]})
    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 1.2 + 0.5 * len(labels) * len(examples)), squeeze=False)
    for ax, ex in zip(axes[:, 0], examples):
        for lane, label in enumerate(labels):
            for kind, colour, offset in (("target", "tab:green", 0.0), ("predicted", "tab:orange", 0.45)):
                spans = [(e["start"] / 1000, (e["end"] - e["start"]) / 1000) for e in ex[kind] if e["label"] == label]
                ax.broken_barh(spans, (lane + offset, 0.4), color=colour)
        ax.set_yticks([i + 0.45 for i in range(len(labels))], labels)
        end = max([ex["timestamps"][-1] / 1000] + [e["end"] / 1000 for e in ex["target"]])
        ax.set_xlim(0, end)
        ax.set_title(f"{ex['file']}  (green: true, orange: predicted)", fontsize=9)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(f"{result['task']}: {result['model']['label']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
