#!/usr/bin/env bash
# tapegrad vs PyTorch, in one command: benches/compare/run.sh [ROUNDS]
#
# Installs torch + numpy from PyPI into target/compare-venv if they are missing (once; the
# wheel is large), builds the `compare` bench, then, for ROUNDS rounds (default 5), runs
# tapegrad's side and PyTorch's side one group of figures at a time (the MLP step at batch
# 32, at batch 128, inference, the scalar chain, the line fit, the two smaller products,
# the 1024³ product, the CNN's steps and inference), alternately (the side that goes first
# flips with every group and every round), each with 2 threads, and prints a markdown
# table: the median over rounds of each side's per-round median, the ratio of those
# medians, and the median of the per-round ratios. Raw JSON of every group of every round
# is kept in target/compare-results/<timestamp>/. Nothing in the test path needs this
# script or torch.
#
# Environment: ROUNDS, THREADS (default 2), CARGO_TARGET_DIR (honoured), PYTHON (the
# interpreter used to create the venv, default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-${ROUNDS:-5}}"
threads="${THREADS:-2}"
venv="$root/target/compare-venv"
py="$venv/bin/python"

if ! "$py" -c 'import torch, numpy' >/dev/null 2>&1; then
    echo "== installing torch and numpy from PyPI into $venv (once)" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install torch numpy
fi

# Both sides get the same number of threads.
export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export MATMUL_NUM_THREADS="$threads"

echo "== building the compare bench" >&2
cd "$root"
exe="$(cargo bench -p tapegrad-benches --bench compare --no-run --message-format=json-render-diagnostics \
    | "$py" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "compare" and m.get("executable"):
        print(m["executable"])')"
[ -x "$exe" ] || { echo "could not find the compare bench executable" >&2; exit 1; }

out="$root/target/compare-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
{
    echo "{"
    echo "  \"nproc\": $(nproc --all),"
    echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"//g')\","
    echo "  \"flags_avx512f\": $(grep -qm1 avx512f /proc/cpuinfo && echo true || echo false),"
    echo "  \"torch\": \"$("$py" -c 'import torch; print(torch.__version__)')\","
    echo "  \"rustc\": \"$(rustc --version)\","
    echo "  \"threads\": $threads,"
    echo "  \"rounds\": $rounds,"
    echo "  \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\""
    echo "}"
} >"$out/env.json"

# Interleaved figure group by figure group, so that each pair of measurements is taken
# seconds apart: this machine's speed moves between modes for seconds to minutes at a
# time, which a whole side's run (~40 s) would catch on one side and not the other.
groups=(mlp_b32 mlp_b128 infer chain fit_line matmul matmul_large cnn)
for ((r = 1; r <= rounds; r++)); do
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== round $r/$rounds (load $load)" >&2
    echo "$load" >"$out/loadavg_round_$r"
    for ((g = 0; g < ${#groups[@]}; g++)); do
        group="${groups[$g]}"
        run_rust() { "$exe" --bench --json --only "$group" >"$out/tapegrad-$r-$group.json"; }
        run_torch() {
            "$py" "$here/torch_bench.py" --threads "$threads" --only "$group" \
                >"$out/torch-$r-$group.json"
        }
        # The side that goes first alternates from group to group and round to round.
        if (((r + g) % 2)); then run_rust; run_torch; else run_torch; run_rust; fi
    done
done
echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$out/loadavg_end"

"$py" "$here/summarize.py" "$out"
