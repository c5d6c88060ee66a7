#!/usr/bin/env python3
"""Summarizes a run of benches/compare/run.sh: a markdown table of medians over rounds.

    python3 summarize.py target/compare-results/<timestamp>

Each side (tapegrad, PyTorch, JAX) reports the figures it measures; a figure one side does
not report shows as "—" there, and its ratios as "—".
"""

import glob
import json
import math
import os
import statistics
import sys

# The peers, in column order: (file prefix, column name).
PEERS = [("torch", "PyTorch"), ("jax", "JAX")]

# (figure, tapegrad key, peers' key, unit, higher is better, target)
ROWS = [
    ("MLP step, batch 32", "mlp_step_b32_ms", "mlp_step_b32_ms", "ms", False, "≤ 0.33× PyTorch, ≤ 0.5× JAX"),
    ("MLP step, batch 32 (nn::Sequential)", "mlp_step_nn_b32_ms", "mlp_step_b32_ms", "ms", False, "≤ 0.33× PyTorch, ≤ 0.5× JAX"),
    ("MLP step, batch 128", "mlp_step_b128_ms", "mlp_step_b128_ms", "ms", False, "≤ 0.5× PyTorch, ≤ 0.67× JAX"),
    ("MLP step, batch 128 (nn::Sequential)", "mlp_step_nn_b128_ms", "mlp_step_b128_ms", "ms", False, "≤ 0.5× PyTorch, ≤ 0.67× JAX"),
    ("MLP inference, batch 32", "mlp_infer_b32_ms", "mlp_infer_b32_ms", "ms", False, "≤ 0.77× PyTorch, < 1× JAX"),
    ("MLP inference, batch 128", "mlp_infer_b128_ms", "mlp_infer_b128_ms", "ms", False, "≤ 0.77× PyTorch, < 1× JAX"),
    ("scalar chain, fwd+bwd per op", "scalar_chain_ns_per_op", "scalar_chain_ns_per_op", "ns", False, "≤ 30 ns"),
    ("line fit, 500 epochs (Model::fit)", "fit_line_ms", "fit_line_ms", "ms", False, "≤ 0.33× JAX"),
    ("line fit, 500 epochs (hand loop)", "fit_line_hand_ms", "fit_line_ms", "ms", False, ""),
    ("line fit, compile time (JAX jit)", "fit_line_compile_ms", "fit_line_compile_ms", "ms", False, ""),
]
for size, target in (("128x784x256", "≥ 0.9× PyTorch"), ("32x784x256", ""), ("1024x1024x1024", "≥ 0.9× PyTorch")):
    ROWS.append((f"matmul {size} fwd", f"matmul_{size}_fwd_gflops", f"matmul_{size}_fwd_gflops", "GFLOP/s", True, target))
    ROWS.append((f"matmul {size} fwd+bwd", f"matmul_{size}_fwd_bwd_gflops", f"matmul_{size}_fwd_bwd_gflops", "GFLOP/s", True, ""))
ROWS += [
    ("CNN step, batch 32 (Adam)", "cnn_step_b32_ms", "cnn_step_b32_ms", "ms", False, "≤ 0.67× PyTorch"),
    ("CNN step, batch 128 (Adam)", "cnn_step_b128_ms", "cnn_step_b128_ms", "ms", False, "≤ 0.67× PyTorch"),
    ("CNN inference, batch 128", "cnn_infer_b128_ms", "cnn_infer_b128_ms", "ms", False, "≤ 0.67× PyTorch"),
    ("conv2d [32,32,14,14] * [64,32,3,3] fwd", "conv2d_fwd_gflops", "conv2d_fwd_gflops", "GFLOP/s", True, ""),
    ("conv2d [32,32,14,14] * [64,32,3,3] fwd+bwd", "conv2d_fwd_bwd_gflops", "conv2d_fwd_bwd_gflops", "GFLOP/s", True, ""),
    ("makemore transformer step, batch 32 (AdamW)", "makemore_transformer_step_ms", "makemore_transformer_step_ms", "ms", False, "≤ 0.33× PyTorch"),
    ("makemore transformer, sample 10 names", "makemore_transformer_sample_ms", "makemore_transformer_sample_ms", "ms", False, "≤ 0.33× PyTorch"),
    ("makemore GRU step, batch 32 (AdamW)", "makemore_gru_step_ms", "makemore_gru_step_ms", "ms", False, "≤ 0.33× PyTorch"),
    ("makemore GRU, sample 10 names", "makemore_gru_sample_ms", "makemore_gru_sample_ms", "ms", False, "≤ 0.33× PyTorch"),
]


def load(out, side):
    """Each round's figures of one side: `{round: {key: value}}`, merged over the round's
    files (`<side>-<round>-<group>.json`, one per group; a `<side>-<round>.json` holding a
    whole round's figures is read the same way)."""
    rounds = {}
    for path in glob.glob(os.path.join(out, f"{side}-*.json")):
        r = int(os.path.basename(path)[len(side) + 1 :].split("-")[0].split(".")[0])
        with open(path) as f:
            rounds.setdefault(r, {}).update(json.load(f))
    return rounds


def med(runs, key):
    """The median over rounds of one figure, or NaN where no round has it."""
    values = [r[key] for r in runs.values() if key in r]
    return statistics.median(values) if values else math.nan


def paired(ours, theirs, ours_key, theirs_key):
    """The median over rounds of each round's ratio (the sides measured seconds apart)."""
    ratios = [
        ours[r][ours_key] / theirs[r][theirs_key]
        for r in ours
        if r in theirs and ours_key in ours[r] and theirs_key in theirs[r] and theirs[r][theirs_key]
    ]
    return statistics.median(ratios) if ratios else math.nan


def show(value, fmt):
    return "—" if math.isnan(value) else format(value, fmt)


def main():
    out = sys.argv[1]
    ours = load(out, "tapegrad")
    peers = [(name, load(out, prefix)) for prefix, name in PEERS]
    with open(os.path.join(out, "env.json")) as f:
        env = json.load(f)
    end = ""
    if os.path.exists(os.path.join(out, "loadavg_end")):
        with open(os.path.join(out, "loadavg_end")) as f:
            end = f.read().strip()

    print(f"CPU: {env['cpu']} ({env['nproc']} cores, AVX-512: {env['flags_avx512f']}); "
          f"torch {env.get('torch') or '—'}; jax {env.get('jax') or '—'}; {env['rustc']}")
    counts = ", ".join(f"{len(runs)} {name} rounds" for name, runs in peers)
    print(f"{env['threads']} threads each; {len(ours)} tapegrad rounds, {counts} "
          f"(alternating group by group); load average at start {env['loadavg_start']}, at end {end}")
    rounds = sorted(glob.glob(os.path.join(out, "loadavg_round_*")), key=lambda p: int(p.rsplit("_", 1)[1]))
    if rounds:
        loads = []
        for path in rounds:
            with open(path) as f:
                loads.append(f.read().split()[0])
        print(f"1-minute load average at the start of each round: {', '.join(loads)}")
    print("Ratios are tapegrad / peer: below 1 means tapegrad is faster for times, above 1 for GFLOP/s.")
    print()
    names = [name for name, _ in peers]
    header = ["figure", "tapegrad", *names]
    for name in names:
        header += [f"tapegrad / {name}", "median of round ratios"]
    print("| " + " | ".join(header + ["target"]) + " |")
    print("|---|" + "---:|" * (1 + len(names) + 2 * len(names)) + "---|")
    for label, ours_key, theirs_key, unit, _higher, target in ROWS:
        a = med(ours, ours_key)
        values = [med(runs, theirs_key) for _, runs in peers]
        if math.isnan(a) and all(math.isnan(v) for v in values):
            continue
        cells = [label, show(a, ".4g") + f" {unit}" * (not math.isnan(a))]
        cells += [show(v, ".4g") + f" {unit}" * (not math.isnan(v)) for v in values]
        for (_, runs), b in zip(peers, values):
            cells += [show(a / b if b else math.nan, ".3f"), show(paired(ours, runs, ours_key, theirs_key), ".3f")]
        print("| " + " | ".join(cells + [target]) + " |")
    print()
    print(f"Raw per-round JSON: {out}")


if __name__ == "__main__":
    main()
