#!/usr/bin/env bash
# Cross-check `hear-dual evaluate` against the organizers' kit, heareval 2021.1.3, on the same two small tasks:
# a scene task built from FSDD and a generated event task, for hear_dual.torch_impl and hear_dual.tf_impl.
#
#   scripts/heareval-crosscheck.sh [WORKDIR]        (default WORKDIR: crosscheck/, gitignored)
#
# heareval pins numpy 1.19.2 and numba 0.48 (no Python 3.11 builds), so it goes into its own venv
# (.venv-heareval) with --no-deps plus what its code imports, and the four workarounds it needs today:
# pytorch-lightning 1.9.5 (it calls Trainer(gpus=...)), setuptools<81 (pkg_resources),
# TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (its checkpoints hold torch.nn.Identity, which torch >= 2.6 refuses to
# unpickle by default) and dcase_util/sed_eval (imported even for scene tasks); event tasks need a fifth,
# scripts/heareval_predict.py (an off-by-one epoch lookup under pytorch-lightning >= 1.6). Ours runs from .venv.
# Both use the default grid with 2 grid points (--grid-points 2: the same first two points of the same
# shuffle in both) to keep the run short on a 2-core machine. Output: WORKDIR/crosscheck.md.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-crosscheck}
HEV=.venv-heareval
POINTS=${GRID_POINTS:-2}
export TF_CPP_MIN_LOG_LEVEL=2 PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -f "$HEV/.ready" ]; then
  python3 -m venv "$HEV"
  "$HEV/bin/pip" install -q -c constraints.txt torch tensorflow-cpu numpy soundfile scikit-learn tqdm jsonschema \
    onnx soxr
  "$HEV/bin/pip" install -q --no-deps heareval==2021.1.3
  "$HEV/bin/pip" install -q -c constraints.txt pytorch-lightning==1.9.5 "setuptools<81" dcase_util sed_eval \
    intervaltree more_itertools pandas torchinfo click python-slugify scipy
  "$HEV/bin/pip" install -q --no-deps -e .
  touch "$HEV/.ready"
fi

rm -rf "$WORK" && mkdir -p "$WORK"
FSDD=$(.venv/bin/python -c "from hear_dual.datasets import fsdd_dir; print(fsdd_dir() or '')")
[ -n "$FSDD" ] || { echo "FSDD not found (see hear_dual.datasets.fsdd_dir)"; exit 1; }
# scene: 12 recordings per digit (120 clips), cut or padded to 0.56 s as hearpreprocess's spoken_digit, 3 folds
.venv/bin/hear-dual make-task "$FSDD" "$WORK/tasks/fsdd_digits" --label-pattern '^(\d)_' --max-per-label 12 \
  --duration 0.56 --folds 3
# event: 30 generated 2-s clips with beeps, buzzes and hisses, train/valid/test 18/6/6
.venv/bin/python -c "from hear_dual.evaluation.synthetic import write_event_clips as w; w('$WORK/events_src', 30)"
.venv/bin/hear-dual make-task "$WORK/events_src" "$WORK/tasks/generated_events" \
  --events "$WORK/events_src/events.csv" --duration 2.0 --valid 0.2 --test 0.2

for module in hear_dual.torch_impl hear_dual.tf_impl; do
  (cd "$WORK" && TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "../$HEV/bin/python" -m heareval.embeddings.runner "$module" \
     --tasks-dir tasks --embeddings-dir heareval-embeddings > "heareval-embed-$module.log" 2>&1)
  (cd "$WORK" && TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "../$HEV/bin/python" ../scripts/heareval_predict.py \
     heareval-embeddings/"$module"/* --grid-points "$POINTS" > "heareval-predict-$module.log" 2>&1)
  .venv/bin/hear-dual evaluate "$module" "$WORK/tasks" --grid-points "$POINTS" --out "$WORK/ours" \
    --cache-dir "$WORK/cache" > "$WORK/ours-$module.log" 2>&1
done
"$HEV/bin/python" scripts/crosscheck_table.py "$WORK" | tee "$WORK/crosscheck.md"
