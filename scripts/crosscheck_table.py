"""Side-by-side scores of heareval and `hear-dual evaluate` from a scripts/heareval-crosscheck.sh work folder.

Runs in the heareval venv (it unpickles heareval's saved test predictions, which hold torch tensors). Besides
the two kits' scores, it re-scores heareval's own test predictions with hear_dual.evaluation.scores, which
checks our score definitions against heareval's (sklearn and sed_eval) on identical predictions.
"""

import json
import pickle
import sys
from pathlib import Path

import numpy as np

from hear_dual.evaluation import scores
from hear_dual.evaluation.report import result_path

work = Path(sys.argv[1])
MODULES = ("hear_dual.torch_impl", "hear_dual.tf_impl")


def heareval_numbers(task_dir: Path) -> tuple[dict, dict]:
    """({score: (mean, std or None)}, best hparams) from heareval's test.predicted-scores.json."""
    results = json.loads((task_dir / "test.predicted-scores.json").read_text())
    metadata = json.loads((task_dir / "task_metadata.json").read_text())
    out = {}
    for name in metadata["evaluation"]:
        if "aggregated_scores" in results:
            agg = results["aggregated_scores"]
            out[name] = (agg[f"test_{name}_mean"], agg[f"test_{name}_std"])
        else:
            out[name] = (results["test"][f"test_{name}"], None)
    return out, results["hparams"]


def rescore(task_dir: Path) -> list[tuple[str, str, float, float]]:
    """(fold, score, heareval's value, ours on heareval's predictions)."""
    results = json.loads((task_dir / "test.predicted-scores.json").read_text())
    metadata = json.loads((task_dir / "task_metadata.json").read_text())
    labels = [line.split(",", 1)[1] for line in (task_dir / "labelvocabulary.csv").read_text().split()[1:]]
    rows = []
    for path in sorted(task_dir.glob("*.predictions.pkl")):
        fold = path.name.split(".")[0]
        with open(path, "rb") as f:
            saved = pickle.load(f)
        for name in metadata["evaluation"]:
            if metadata["embedding_type"] == "scene":
                ours = scores.compute(name, saved["prediction"].numpy(), saved["target"].numpy())[0]
            else:
                ours = scores.compute(name, saved["predicted_events"], saved["target_events"], labels)[0]
            rows.append((fold, name, results[fold][f"test_{name}"], ours))
    return rows


def cell(mean, std):
    return f"{mean:.3f}" + ("" if std is None else f" ± {std:.3f}")


lines = ["| task | score | module | heareval 2021.1.3 | hear-dual evaluate | best grid point (heareval / ours) |",
         "|---|---|---|---|---|---|"]
checks = []
for module in MODULES:
    for task_dir in sorted((work / "heareval-embeddings" / module).iterdir()):
        theirs, hparams = heareval_numbers(task_dir)
        ours = json.loads(result_path(work / "ours", task_dir.name, module).read_text())
        conf = ours["best_conf"]
        grid = (f"{hparams['hidden_layers']}x, lr {float(hparams['lr']):g}, {hparams['initialization'].split()[1]}"
                f" / {conf['hidden_layers']}x, lr {conf['lr']:g}, {conf['initialization']}")
        for name, (mean, std) in theirs.items():
            agg = ours["aggregate"][name]
            lines.append(f"| {task_dir.name} | {name} | {module} | {cell(mean, std)} | {cell(agg['mean'], agg['std'])}"
                         f" | {grid} |")
        checks += [(module, task_dir.name, *row) for row in rescore(task_dir)]
print("\n".join(lines))
print("\nOur score functions on heareval's own test predictions (same numbers expected):\n")
print("| module | task | fold | score | heareval | ours on heareval's predictions |\n|---|---|---|---|---|---|")
for module, task, fold, name, theirs, ours in checks:
    print(f"| {module} | {task} | {fold} | {name} | {theirs:.6f} | {ours:.6f} |")
worst = max(abs(t - o) for *_, t, o in checks if np.isfinite(t) and np.isfinite(o))
print(f"\nlargest difference: {worst:.2e}")
