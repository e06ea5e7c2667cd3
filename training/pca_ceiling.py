"""How much of an FSDD score survives a k-dimensional bottleneck: the evaluation's probe on the top k principal
components of a model's scene embeddings (PCA fitted on each fold's training part only).

    python -m training.pca_ceiling --model logmel-stats --model hear_dual.torch_impl:base --task fsdd-speaker

A diagnostic for the compact track (64 dimensions), not part of any recipe: if a 64-d PCA of the teacher's
scene already scores below a reference, distilling the teacher alone cannot beat that reference in 64
dimensions. Embeddings come from (and go to) the `hear-dual evaluate` cache; folds and probe are the
evaluation's own (hear_dual.evaluation.labelled).
"""

from __future__ import annotations

import argparse

import numpy as np

from hear_dual.evaluation import labelled
from hear_dual.evaluation.models import load, model_ref


def pca_scores(embeddings: np.ndarray, labels, folds, ks, seed: int = 0) -> dict:
    """{k: mean fold accuracy of evaluate's logreg probe on the top-k principal components} (k=None: no PCA)."""
    return {k: labelled.cross_validate(embeddings, labels, folds, "logreg", seed, bottleneck=k)["mean"] for k in ks}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True,
                        help="a reference name (logmel-stats, randproj, ...) or MODULE[:WEIGHTS]; repeatable")
    parser.add_argument("--task", default="fsdd-speaker", help="a built-in FSDD task")
    parser.add_argument("--k", type=int, action="append", help="PCA sizes (default 16, 32, 48, 64)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    task = labelled.resolve_task(args.task)
    data = labelled.load_dataset(task, labelled.resolve_data("fsdd"))
    folds = labelled.make_folds(task, data.labels, data.groups, seed=args.seed)
    ks = [None] + (args.k or [16, 32, 48, 64])
    print(f"{args.task}, logreg probe on the top k principal components; 'all' = no PCA")
    print(f"{'model':<32} {'D':>5} " + " ".join(f"{'all' if k is None else k:>6}" for k in ks))
    for name in args.model:
        module, _, weights = name.partition(":")
        embeddings, _ = labelled.get_embeddings(load(model_ref(module, weights)), data.files)
        scores = pca_scores(np.asarray(embeddings, np.float64), data.labels, folds,
                            [k for k in ks if k is None or k <= embeddings.shape[1]], args.seed)
        print(f"{name:<32} {embeddings.shape[1]:>5} " + " ".join(f"{scores.get(k, float('nan')):>6.3f}" for k in ks))


if __name__ == "__main__":
    main()
