"""The timing scheme and command line that torch_bench.py and jax_bench.py share.

Every figure is the median of many timed repetitions (`time_median`); the MLP steps run
in blocks of BLOCK timed steps (after two untimed ones) that restart from the initial
weights, on batches cycled from a pool of POOL (`block_median`). The figures' keys and
groups are those of `cargo bench -p tapegrad-benches --bench compare -- --json` (see
benches/compare/main.rs).
"""

import argparse
import json
import math
import statistics
import sys
import time

LR = 0.1
POOL = 16
BLOCK = 20
MATMULS = [(128, 784, 256), (32, 784, 256), (1024, 1024, 1024)]
# The groups of figures --only selects, as in main.rs: matmul is 128x784x256 and
# 32x784x256, matmul_large 1024^3; makemore the Transformer's and the GRU's steps and
# sampling (tapegrad and PyTorch only).
GROUPS = [
    "mlp_b32", "mlp_b128", "infer", "chain", "fit_line", "matmul", "matmul_large", "cnn", "conv",
    "makemore",
]


class Budget:
    """How long to repeat a measurement: at least `seconds`, and at least `min_reps` times."""

    def __init__(self, seconds, min_reps):
        self.seconds = seconds
        self.min_reps = min_reps


def time_median(budget, warmup, fn, setup=None):
    """The median time of `fn()` in seconds, after `warmup` untimed calls. With `setup`,
    each call is `fn(setup())`, `setup()` untimed."""

    def timed():
        args = () if setup is None else (setup(),)
        t = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t

    for _ in range(warmup):
        timed()
    samples = []
    start = time.perf_counter()
    while len(samples) < budget.min_reps or time.perf_counter() - start < budget.seconds:
        samples.append(timed())
    return statistics.median(samples)


def block_median(budget, data, restart, step):
    """The median time of `step(x, y)` in seconds, over blocks of BLOCK + 2 steps that each
    begin with `restart()` (untimed) and whose first two steps are not timed; the batches
    `(x, y)` are cycled from `data`."""
    samples = []
    i = 0
    start = time.perf_counter()
    while len(samples) < budget.min_reps * BLOCK or time.perf_counter() - start < budget.seconds:
        restart()
        for n in range(BLOCK + 2):
            x, y = data[i % len(data)]
            i += 1
            t = time.perf_counter()
            step(x, y)
            if n >= 2:
                samples.append(time.perf_counter() - t)
    return statistics.median(samples)


class Run:
    """The command line (`--quick`, `--only GROUP[,GROUP...]` and the side's own options)
    and the figures measured so far."""

    def __init__(self, description, add_arguments=None):
        parser = argparse.ArgumentParser(description=description)
        if add_arguments:
            add_arguments(parser)
        parser.add_argument("--quick", action="store_true", help="one repetition of each")
        parser.add_argument(
            "--only",
            help="comma-separated groups to measure (default: all): " + ", ".join(GROUPS),
        )
        self.args = parser.parse_args()
        self.only = self.args.only.split(",") if self.args.only else list(GROUPS)
        unknown = [g for g in self.only if g not in GROUPS]
        if unknown:
            parser.error(f"unknown groups {unknown}; the groups are {GROUPS}")
        if self.args.quick:
            self.short = self.long = Budget(0.0, 1)
        else:
            self.short, self.long = Budget(1.5, 10), Budget(2.5, 5)
        self.figures = {}

    def wanted(self, group):
        return group in self.only

    def mlp(self, step, infer):
        """The MLP's training steps (`step(budget, batch)`) and inference
        (`infer(budget, batch)`) at batches 32 and 128, in seconds."""
        for batch in (32, 128):
            if self.wanted(f"mlp_b{batch}"):
                self.figures[f"mlp_step_b{batch}_ms"] = step(self.short, batch) * 1e3
        if self.wanted("infer"):
            for batch in (32, 128):
                self.figures[f"mlp_infer_b{batch}_ms"] = infer(self.short, batch) * 1e3

    def matmuls(self, fwd, fwd_bwd):
        """The products of MATMULS in GFLOP/s: `fwd(budget, m, k, n)` and
        `fwd_bwd(budget, m, k, n)`."""
        for m, k, n in MATMULS:
            large = m * k * n >= 1 << 28
            if not self.wanted("matmul_large" if large else "matmul"):
                continue
            budget = self.long if large else self.short
            self.figures[f"matmul_{m}x{k}x{n}_fwd_gflops"] = fwd(budget, m, k, n)
            self.figures[f"matmul_{m}x{k}x{n}_fwd_bwd_gflops"] = fwd_bwd(budget, m, k, n)

    def cnn(self, step, infer, conv_gflops):
        """The CNN's training steps (`step(budget, batch)`) at batches 32 and 128 and its
        inference at 128 (`infer(budget, batch)`), in seconds; its second convolution alone
        (`conv_gflops(budget, fwd_bwd)`), in GFLOP/s."""
        if self.wanted("cnn"):
            for batch in (32, 128):
                self.figures[f"cnn_step_b{batch}_ms"] = step(self.long, batch) * 1e3
            self.figures["cnn_infer_b128_ms"] = infer(self.long, 128) * 1e3
        if self.wanted("conv"):
            self.figures["conv2d_fwd_gflops"] = conv_gflops(self.short, False)
            self.figures["conv2d_fwd_bwd_gflops"] = conv_gflops(self.short, True)

    def print(self):
        """Prints the figures as one JSON object, after checking every number is finite."""
        assert all(math.isfinite(v) for v in self.figures.values() if isinstance(v, float))
        json.dump(self.figures, sys.stdout, indent=2)
        print()
