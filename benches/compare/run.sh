#!/usr/bin/env bash
# tapegrad vs PyTorch vs JAX, in one command: benches/compare/run.sh [ROUNDS]
#
# Installs torch + numpy from PyPI into target/compare-venv and jax[cpu] + numpy into
# target/compare-jax-venv if they are missing (once; torch's wheel is large), builds the
# `compare` bench, then, for ROUNDS rounds (default 5), runs the three sides one group of
# figures at a time (the MLP step at batch 32, at batch 128, inference, the scalar chain,
# the line fit, the two smaller products, the 1024³ product, the CNN's steps and
# inference), one after the other (the side that goes first rotates with every group and
# every round), each with THREADS threads, and prints a markdown table: the median over
# rounds of each side's per-round median, the ratios of those medians (tapegrad / PyTorch,
# tapegrad / JAX), and the medians of the per-round ratios. Raw JSON of every group of
# every round is kept in target/compare-results/<timestamp>/. Nothing in the test path
# needs this script, torch or jax.
#
# Threads: tapegrad reads RAYON_NUM_THREADS and MATMUL_NUM_THREADS, PyTorch gets
# torch.set_num_threads (and OMP_/MKL_NUM_THREADS). XLA sizes its CPU thread pool from the
# CPUs the process may run on, so JAX runs under `taskset -c 0-(THREADS-1)` when THREADS is
# below the core count, and with THREADS=1 also under XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
# intra_op_parallelism_threads=1".
#
# Environment: ROUNDS, THREADS (default 2), SIDES (default "tapegrad torch jax": leave one
# out to skip it), ONLY (a space-separated subset of the figure groups below, default all:
# ONLY="cnn conv" benches/compare/run.sh 5), CARGO_TARGET_DIR (honoured), PYTHON (the
# interpreter used to create the venvs, default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-${ROUNDS:-5}}"
threads="${THREADS:-2}"
sides=(${SIDES:-tapegrad torch jax})
venv="$root/target/compare-venv"
py="$venv/bin/python"
jax_venv="$root/target/compare-jax-venv"
jax_py="$jax_venv/bin/python"
has_side() { [[ " ${sides[*]} " == *" $1 "* ]]; }

install() { # VENV PYTHON IMPORTS PACKAGES...
    local venv="$1" py="$2" imports="$3"
    shift 3
    if ! "$py" -c "import $imports" >/dev/null 2>&1; then
        echo "== installing $* from PyPI into $venv (once)" >&2
        "${PYTHON:-python3}" -m venv "$venv"
        "$py" -m pip install --quiet --upgrade pip
        "$py" -m pip install "$@"
    fi
}
if has_side torch; then install "$venv" "$py" "torch, numpy" torch numpy; fi
if has_side jax; then install "$jax_venv" "$jax_py" "jax, numpy" "jax[cpu]" numpy; fi

# Every side gets the same number of threads.
export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export MATMUL_NUM_THREADS="$threads"
jax_run=()
if ((threads < $(nproc))); then jax_run=(taskset -c "0-$((threads - 1))"); fi
jax_xla_flags="${XLA_FLAGS:-}"
if ((threads == 1)); then
    jax_xla_flags="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1 $jax_xla_flags"
fi

echo "== building the compare bench" >&2
cd "$root"
exe="$(cargo bench -p tapegrad-benches --bench compare --no-run --message-format=json-render-diagnostics \
    | "${PYTHON:-python3}" -c 'import json, sys
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
    echo "  \"torch\": \"$(has_side torch && "$py" -c 'import torch; print(torch.__version__)')\","
    echo "  \"jax\": \"$(has_side jax && "$jax_py" -c 'import jax; print(jax.__version__)')\","
    echo "  \"rustc\": \"$(rustc --version)\","
    echo "  \"threads\": $threads,"
    echo "  \"rounds\": $rounds,"
    echo "  \"sides\": \"${sides[*]}\","
    echo "  \"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\""
    echo "}"
} >"$out/env.json"

# Interleaved figure group by figure group, so that the measurements of one figure are
# taken seconds apart: this machine's speed moves between modes for seconds to minutes at
# a time, which a whole side's run (~40 s) would catch on one side and not the others.
groups=(${ONLY:-mlp_b32 mlp_b128 infer chain fit_line matmul matmul_large cnn conv makemore})
for ((r = 1; r <= rounds; r++)); do
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== round $r/$rounds (load $load)" >&2
    echo "$load" >"$out/loadavg_round_$r"
    for ((g = 0; g < ${#groups[@]}; g++)); do
        group="${groups[$g]}"
        # The side that goes first rotates from group to group and round to round.
        for ((s = 0; s < ${#sides[@]}; s++)); do
            side="${sides[$(((r + g + s) % ${#sides[@]}))]}"
            case "$side" in
            tapegrad) "$exe" --bench --json --only "$group" >"$out/tapegrad-$r-$group.json" ;;
            torch)
                "$py" "$here/torch_bench.py" --threads "$threads" --only "$group" \
                    >"$out/torch-$r-$group.json"
                ;;
            jax)
                # JAX has no makemore models here: the group is tapegrad's and PyTorch's.
                if [[ $group == makemore ]]; then echo '{}' >"$out/jax-$r-$group.json"; continue; fi
                XLA_FLAGS="$jax_xla_flags" "${jax_run[@]}" "$jax_py" "$here/jax_bench.py" \
                    --only "$group" >"$out/jax-$r-$group.json"
                ;;
            *) echo "unknown side $side (SIDES: tapegrad torch jax)" >&2; exit 2 ;;
            esac
        done
    done
done
echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$out/loadavg_end"

"${PYTHON:-python3}" "$here/summarize.py" "$out"
