#!/usr/bin/env python3
"""JAX's side of the comparison (benches/compare/run.sh runs all three sides).

Prints one JSON object of medians with the same keys as `cargo bench -p tapegrad-benches
--bench compare -- --json` and torch_bench.py (see benches/compare/main.rs for what each
figure is). Same workloads, same timing scheme: every figure is the median of many timed
repetitions; the MLP steps run in blocks of 20 that restart from the initial weights, on
batches cycled from a pool of 16 random-label batches. Everything timed is a call of a
`jax.jit`-compiled function, compiled before timing starts, whose result is waited for
(`block_until_ready`), as the other sides read a number of their result.

- `mlp_step_b{32,128}_ms`: one jit of `value_and_grad` of the mean softmax cross-entropy
  plus the SGD update, the parameters donated (updated in place);
- `mlp_infer_b{32,128}_ms`: the jit-compiled forward pass;
- `fit_line_ms`: the whole 500-epoch line fit as one jit-compiled `lax.fori_loop`
  (`fit_line_compile_ms`: its compile time, reported apart);
- `matmul_{m}x{k}x{n}_{fwd,fwd_bwd}_gflops`: `a @ b`, and with the gradients of both
  operands for a random output gradient (`jax.vjp`, see `forward_backward`);
- `cnn_step_b{32,128}_ms`: the Fashion-MNIST CNN (`examples/fashion_mnist.rs --model cnn`,
  NCHW as the other sides) trained by one jit of `value_and_grad` plus an Adam update
  written out (PyTorch's formulas, lr 1e-3), parameters and moments donated;
  `cnn_infer_b128_ms`: its jit-compiled forward pass;
- `conv2d_{fwd,fwd_bwd}_gflops`: the CNN's second convolution alone
  (`lax.conv_general_dilated`, `[32, 32, 14, 14]` by `[64, 32, 3, 3]`, padding 1), and with
  its input and weight gradients, as the products.

The scalar chain is not measured: under `jit` the 1,002 ops are compiled into one fused
loop (no per-op cost is left to compare with a tape's), and without `jit` each op is a
Python-level dispatch of several microseconds.

Threads: XLA's CPU client sizes its thread pool from the CPUs the process may run on, so
run.sh pins the process with `taskset` to THREADS cores when THREADS is below the core
count, and with THREADS=1 also sets `XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"`.

    python3 jax_bench.py [--quick] [--only GROUP[,GROUP...]]
"""

import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from timing import LR, POOL, Run, block_median, time_median

SIZES = [784, 256, 128, 10]


def mlp_params(seed):
    """Glorot-uniform kernels `(fan_in, fan_out)` and zero biases, as the other sides."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        params.append((jnp.asarray(w), jnp.zeros(fan_out, jnp.float32)))
    return params


def forward(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def cross_entropy(params, x, y):
    logp = jax.nn.log_softmax(forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@jax.jit
def predict(params, x):
    return forward(params, x)


def sgd_step(params, x, y):
    loss, grads = jax.value_and_grad(cross_entropy)(params, x, y)
    return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss


train_step = jax.jit(sgd_step, donate_argnums=0)


def mnist_like(batch, batches, seed):
    rng = np.random.default_rng(seed)
    return [
        (
            jnp.asarray(rng.random((batch, 784), dtype=np.float32)),
            jnp.asarray(rng.integers(0, 10, batch, dtype=np.int32)),
        )
        for _ in range(batches)
    ]


def mlp_step(budget, batch):
    init = mlp_params(42)
    data = mnist_like(batch, POOL, 11)
    params = jax.tree.map(jnp.copy, init)
    params, loss = train_step(params, *data[0])  # compiles
    loss.block_until_ready()
    state = [params]

    def restart():
        state[0] = jax.block_until_ready(jax.tree.map(jnp.copy, init))

    def step(x, y):
        state[0], loss = train_step(state[0], x, y)
        loss.block_until_ready()

    return block_median(budget, data, restart, step)


def mlp_infer(budget, batch):
    params = mlp_params(42)
    x = mnist_like(batch, 1, 13)[0][0]
    return time_median(budget, 5, lambda: predict(params, x).block_until_ready())


def fit_line(budget):
    # The article's loop: y = 5x + 1, xs = -1..4, one Linear(1, 1), SGD lr 0.01, MSE.
    xs = jnp.array([[-1.0], [0.0], [1.0], [2.0], [3.0], [4.0]], jnp.float32)
    ys = 5 * xs + 1

    def loss(params):
        w, b = params
        return jnp.mean((xs @ w + b - ys) ** 2)

    def epoch(_, params):
        grads = jax.grad(loss)(params)
        return jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)

    fit = jax.jit(lambda params: lax.fori_loop(0, 500, epoch, params))
    rng = np.random.default_rng(7)

    def fresh():
        w = rng.uniform(-1.0, 1.0, (1, 1)).astype(np.float32)
        return (jnp.asarray(w), jnp.zeros(1, jnp.float32))

    t = time.perf_counter()
    compiled = fit.lower(fresh()).compile()
    compile_s = time.perf_counter() - t
    run = time_median(
        budget, 0, lambda params: jax.block_until_ready(compiled(params)),
        setup=lambda: jax.block_until_ready(fresh()),
    )
    return run, compile_s


def operands(m, k, n):
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.uniform(-1, 1, (m, k)).astype(np.float32))
    b = jnp.asarray(rng.uniform(-1, 1, (k, n)).astype(np.float32))
    return a, b


def matmul_fwd(budget, m, k, n):
    a, b = operands(m, k, n)
    product = jax.jit(lambda a, b: a @ b)
    return 2 * m * k * n / time_median(budget, 3, lambda: product(a, b).block_until_ready()) / 1e9


def forward_backward(f, output_shape):
    """`f`'s output and its operands' gradients for a random output gradient, jit-compiled.
    Not `grad(sum(f))`: its output gradient is a constant, the output itself is then dead
    code, and XLA would skip the forward product the other sides compute."""
    g = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, output_shape).astype(np.float32))

    def run(*operands):
        y, pullback = jax.vjp(f, *operands)
        return y, pullback(g)

    return jax.jit(run)


def matmul_fwd_bwd(budget, m, k, n):
    a, b = operands(m, k, n)
    f = forward_backward(lambda a, b: a @ b, (m, n))
    secs = time_median(budget, 3, lambda: jax.block_until_ready(f(a, b)))
    return 6 * m * k * n / secs / 1e9


CONV_DIMS = ("NCHW", "OIHW", "NCHW")


def conv(x, w, b=None):
    y = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=CONV_DIMS)
    return y if b is None else y + b[None, :, None, None]


def max_pool2(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def cnn_params(seed):
    """PyTorch's default initialization (uniform in ±1/sqrt(fan_in)); the cost does not
    depend on it."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        limit = 1.0 / math.sqrt(fan_in)
        return jnp.asarray(rng.uniform(-limit, limit, shape).astype(np.float32))

    return [
        (uniform((32, 1, 3, 3), 9), uniform((32,), 9)),
        (uniform((64, 32, 3, 3), 288), uniform((64,), 288)),
        (uniform((64 * 7 * 7, 128), 3136), uniform((128,), 3136)),
        (uniform((128, 10), 128), uniform((10,), 128)),
    ]


def cnn_forward(params, x):
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = params
    h = max_pool2(jax.nn.relu(conv(x, w1, b1)))
    h = max_pool2(jax.nn.relu(conv(h, w2, b2)))
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ w3 + b3)
    return h @ w4 + b4


def cnn_loss(params, x, y):
    logp = jax.nn.log_softmax(cnn_forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def adam_step(state, x, y, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    params, m, v, t = state
    loss, grads = jax.value_and_grad(cnn_loss)(params, x, y)
    t = t + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    step = lr / (1 - b1**t)
    params = jax.tree.map(
        lambda p, m, v: p - step * m / (jnp.sqrt(v / (1 - b2**t)) + eps), params, m, v
    )
    return (params, m, v, t), loss


cnn_train_step = jax.jit(adam_step, donate_argnums=0)
cnn_predict = jax.jit(cnn_forward)


def image_batches(batch, batches, seed):
    return [(x.reshape(batch, 1, 28, 28), y) for x, y in mnist_like(batch, batches, seed)]


def cnn_step(budget, batch):
    params = cnn_params(42)
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = [(params, zeros, jax.tree.map(jnp.zeros_like, params), jnp.float32(0))]
    data = image_batches(batch, POOL, 11)
    i = [0]

    def run():
        x, y = data[i[0] % POOL]
        i[0] += 1
        state[0], loss = cnn_train_step(state[0], x, y)
        loss.block_until_ready()

    return time_median(budget, 2, run)  # the first call compiles


def cnn_infer(budget, batch):
    params = cnn_params(42)
    x = image_batches(batch, 1, 13)[0][0]
    return time_median(budget, 2, lambda: cnn_predict(params, x).block_until_ready())


def conv2d_gflops(budget, fwd_bwd):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(-1, 1, (32, 32, 14, 14)).astype(np.float32))
    w = jnp.asarray(rng.uniform(-1, 1, (64, 32, 3, 3)).astype(np.float32))
    f = forward_backward(conv, (32, 64, 14, 14)) if fwd_bwd else jax.jit(conv)
    secs = time_median(budget, 3, lambda: jax.block_until_ready(f(x, w)))
    return 2 * 32 * 64 * 14 * 14 * 32 * 9 * (3 if fwd_bwd else 1) / secs / 1e9


def main():
    run = Run(__doc__)
    # --only chain is accepted and measures nothing here.
    run.mlp(mlp_step, mlp_infer)
    if run.wanted("fit_line"):
        fit, compile_s = fit_line(run.long)
        run.figures["fit_line_ms"] = fit * 1e3
        run.figures["fit_line_compile_ms"] = compile_s * 1e3
    run.matmuls(matmul_fwd, matmul_fwd_bwd)
    run.cnn(cnn_step, cnn_infer, conv2d_gflops)
    run.figures["_jax_version"] = jax.__version__
    run.figures["_jax_devices"] = str(jax.devices())
    run.figures["_affinity_cpus"] = len(os.sched_getaffinity(0))
    run.print()


if __name__ == "__main__":
    main()
