#!/usr/bin/env bash
# The GPU path, proven in one script (issue 21). Run it where a CUDA GPU is lent:
#     timeout 420 bash bench/gpu_check.sh            # the GPU half (needs torch with CUDA and a GPU)
#     bash bench/gpu_check.sh --cpu                  # the same steps on the CPU (the half CI runs)
# Steps: (1) the CUDA tests of the suite, (2) every model family trained for 2 epochs with --device cuda
# (mixed precision is on by default on CUDA; the card must say so; --cpu: three families, 1 epoch, no study), (3) attribution of a gene on the GPU,
# (4) a small study with fractional GPUs on a local Ray instance (4 runs share one GPU at 0.25 each).
# Prints one line per step with its time; exits non-zero at the first failure. Outputs go to $OUT
# (default: a temporary folder). Record the figures in docs/studies.md with the card named (e.g. H100).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
DEVICE=cuda
EPOCHS=2
FAMILIES="deepchrome attentivechrome simplechrome ranker-deepchrome ranker-attentivechrome deepdiff"
# The CPU half (CI) proves the same path with one epoch of one family per code path of this script (a CNN,
# the LSTMs, the two-cell data): the point is that it runs, not speed; the test suite trains every family.
if [ "${1:-}" = "--cpu" ]; then DEVICE=cpu; EPOCHS=1; FAMILIES="deepchrome attentivechrome deepdiff"; fi
OUT="${OUT:-$(mktemp -d -t hmviz-gpu-check-XXXX)}"
mkdir -p "$OUT"
step() { echo "== $1 ($(date -u +%H:%M:%S))"; }
secs() { local t0=$1; python -c "import time; print(f'{time.time() - $t0:.1f} s')"; }

step "device: $DEVICE"
python - "$DEVICE" <<'PY'
import sys, torch
want = sys.argv[1]
print("torch", torch.__version__, "| cuda available:", torch.cuda.is_available())
if want == "cuda":
    assert torch.cuda.is_available(), "no CUDA GPU visible to torch: install a CUDA build of torch or run --cpu"
    print("card:", torch.cuda.get_device_name(0), "| memory GiB:", round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
PY
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true

step "1. the CUDA tests (tests/test_training.py -k 'device or cuda or amp')"
if [ "$DEVICE" = cuda ]; then
  t0=$(date +%s.%N)
  python -m pytest -q -p no:cacheprovider -n 0 tests/test_training.py -k "device or cuda or amp"
  echo "   $(secs $t0)"
else
  echo "   skipped on the CPU: the test suite runs them (they skip their CUDA cases without a GPU)"
fi

step "2. $FAMILIES: $EPOCHS epoch(s) each, --device $DEVICE"
for model in $FAMILIES; do
  data=sample_data; extra=()
  if [ "$model" = deepdiff ]; then data=sample_data/two_cells; fi
  [ -e "$data" ] || { echo "   $model: skipped ($data not found)"; continue; }
  t0=$(date +%s.%N)
  python -m hmviz train --data "$data" --model "$model" --epochs "$EPOCHS" --device "$DEVICE" --out "$OUT/$model" --quiet --force "${extra[@]}"
  python - "$OUT/$model/model_card.json" "$DEVICE" "$model" "$(secs $t0)" <<'PY'
import json, sys
card = json.load(open(sys.argv[1])); t = card["training"]
assert t["device"].startswith(sys.argv[2]), f"trained on {t['device']}, not {sys.argv[2]}"
if sys.argv[2] == "cuda":
    assert t["mixed_precision"], "mixed precision should be on by default on CUDA"
test = {k: v for k, v in card["metrics"].items() if k.startswith("test_")}
first = next(iter(sorted(test.items())))
print(f"   {sys.argv[3]}: device {t['device']}, mixed precision {t['mixed_precision']}, {t['seconds']} s training "
      f"({sys.argv[4]} with start-up), {first[0]} {first[1]:.3f}")
PY
done

step "3. attribution on $DEVICE (integrated gradients, one gene)"
t0=$(date +%s.%N)
gene=$(python -c "from hmviz.data import read_dataset; print(read_dataset('sample_data').gene_ids[0])")
python -m hmviz explain --model "$OUT/deepchrome" --data sample_data --gene "$gene" --device "$DEVICE" \
  --out "$OUT/attribution.csv"
python -c "import pandas as pd; t = pd.read_csv('$OUT/attribution.csv'); assert len(t) > 0; print('   rows', len(t))"
echo "   $(secs $t0)"

step "4. a small study on Ray: 8 runs sharing the GPU, fractional resources"
if [ "$DEVICE" = cpu ]; then
  echo "   skipped on the CPU: CI's bench/ray_cluster_check.py runs a study on a two-node Ray cluster"
elif python -c "import ray" 2>/dev/null; then
  GPUS=0.25; SEEDS="[1, 2]"; RUNS=8
  cat > "$OUT/study.toml" <<TOML
name = "gpu-check"
seeds = $SEEDS
marks = ["all-marks", "H3K4me3", "H3K36me3", "H3K4me3+H3K36me3"]
epochs = 2
[[datasets]]
name = "sample"
path = "$PWD/sample_data"
[[models]]
name = "deepchrome"
[resources]
num_cpus = 1
num_gpus = $GPUS
device = "$DEVICE"
TOML
  t0=$(date +%s.%N)
  python -m hmviz study run "$OUT/study.toml" --out "$OUT/study" --executor ray --quiet
  python - "$OUT/study/results.csv" "$DEVICE" "$RUNS" <<'PY'
import sys, pandas as pd
t = pd.read_csv(sys.argv[1])
assert len(t) == int(sys.argv[3]) and (t["status"] == "ok").all(), t[["marks", "seed", "status", "error"]]
assert t["device"].str.startswith(sys.argv[2]).all(), t["device"].unique()
print(f"   {len(t)} runs ok on {sorted(t['device'].unique())}; mean run {t['seconds'].mean():.1f} s")
PY
  echo "   $(secs $t0)"
else
  echo "   skipped: Ray is not installed (pip install -r requirements-ray.txt)"
fi
echo "GPU CHECK PASSED ($DEVICE); outputs in $OUT"
