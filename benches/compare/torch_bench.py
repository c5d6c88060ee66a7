#!/usr/bin/env python3
"""PyTorch's side of the comparison (benches/compare/run.sh runs all three sides).

Prints one JSON object of medians with the same keys as `cargo bench -p tapegrad-benches
--bench compare -- --json` (see benches/compare/main.rs for what each figure is). Same workloads, same
timing scheme: every figure is the median of many timed repetitions; the MLP steps run in
blocks of 20 that restart from the initial weights, on batches cycled from a pool of 16
random-label batches.

    python3 torch_bench.py [--threads 2] [--quick] [--only GROUP[,GROUP...]]
"""

import torch
import torch.nn.functional as F

import makemore_torch
from timing import LR, POOL, Run, block_median, time_median

LINKS = 334  # x = tanh(x * w + b): 3 ops a link, 1,002 ops with the leaves


def mlp():
    # Glorot-uniform kernels and zero biases, as Keras' Dense and benches/common/mod.rs.
    layers = []
    sizes = [784, 256, 128, 10]
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        linear = torch.nn.Linear(fan_in, fan_out)
        torch.nn.init.xavier_uniform_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def mnist_like(batch, batches, seed):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(batch, 784, generator=g), torch.randint(0, 10, (batch,), generator=g))
        for _ in range(batches)
    ]


def mlp_step(budget, batch):
    torch.manual_seed(42)
    model = mlp()
    init = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def restart():
        with torch.no_grad():
            for p, v in zip(model.parameters(), init):
                p.copy_(v)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return block_median(budget, mnist_like(batch, POOL, 11), restart, step)


def cnn():
    # examples/fashion_mnist.rs --model cnn, with PyTorch's default initialization (as
    # tapegrad's Conv2d; its Dense layers are Glorot-uniform, which does not change the cost).
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 7 * 7, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def image_batches(batch, batches, seed):
    return [(x.reshape(batch, 1, 28, 28), y) for x, y in mnist_like(batch, batches, seed)]


def cnn_step(budget, batch):
    torch.manual_seed(42)
    model = cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = image_batches(batch, POOL, 11)
    i = [0]

    def run():
        x, y = data[i[0] % POOL]
        i[0] += 1
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    return time_median(budget, 2, run)


def cnn_infer(budget, batch):
    torch.manual_seed(42)
    model = cnn()
    x = image_batches(batch, 1, 13)[0][0]

    def run():
        with torch.no_grad():
            model(x)[0, 0].item()

    return time_median(budget, 2, run)


def conv2d_gflops(budget, fwd_bwd):
    # The CNN's second convolution alone: [32, 32, 14, 14] by 64 filters 3x3, padding 1, no
    # bias; forward, or forward + the input and weight gradients of sum(y).
    x = (torch.rand(32, 32, 14, 14) * 2 - 1).requires_grad_(fwd_bwd)
    w = (torch.rand(64, 32, 3, 3) * 2 - 1).requires_grad_(fwd_bwd)

    def run():
        if fwd_bwd:
            x.grad = None
            w.grad = None
            F.conv2d(x, w, padding=1).sum().backward()
            w.grad[0, 0, 0, 0].item()
        else:
            with torch.no_grad():
                F.conv2d(x, w, padding=1)[0, 0, 0, 0].item()

    flops = 2 * 32 * 64 * 14 * 14 * 32 * 9 * (3 if fwd_bwd else 1)
    return flops / time_median(budget, 3, run) / 1e9


def mlp_infer(budget, batch):
    torch.manual_seed(42)
    model = mlp()
    x = mnist_like(batch, 1, 13)[0][0]

    def run():
        with torch.no_grad():
            model(x)[0, 0].item()

    return time_median(budget, 5, run)


def scalar_chain(budget):
    w = torch.tensor(0.9, requires_grad=True)
    b = torch.tensor(0.1, requires_grad=True)

    def run():
        x = torch.tensor(0.5, requires_grad=True)
        for _ in range(LINKS):
            x = torch.tanh(x * w + b)
        w.grad = None
        b.grad = None
        x.backward()
        w.grad.item()

    return time_median(budget, 20, run) / (LINKS * 3)


def fit_line(budget):
    # The article's loop: y = 5x + 1, xs = -1..4, one Linear(1, 1), SGD lr 0.01, MSE.
    xs = torch.tensor([[-1.0], [0.0], [1.0], [2.0], [3.0], [4.0]])
    ys = 5 * xs + 1

    def fresh():
        model = torch.nn.Linear(1, 1)
        return model, torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.01)

    def fit(setup):
        model, criterion, optimizer = setup
        for _ in range(500):
            optimizer.zero_grad()
            loss = criterion(model(xs), ys)
            loss.backward()
            optimizer.step()
        loss.item()

    return time_median(budget, 0, fit, setup=fresh)


def matmul_fwd(budget, m, k, n):
    a = torch.rand(m, k) * 2 - 1
    b = torch.rand(k, n) * 2 - 1

    def run():
        (a @ b)[0, 0].item()

    return 2 * m * k * n / time_median(budget, 3, run) / 1e9


def matmul_fwd_bwd(budget, m, k, n):
    a = (torch.rand(m, k) * 2 - 1).requires_grad_()
    b = (torch.rand(k, n) * 2 - 1).requires_grad_()

    def run():
        a.grad = None
        b.grad = None
        (a @ b).sum().backward()
        a.grad[0, 0].item()

    return 6 * m * k * n / time_median(budget, 3, run) / 1e9


def main():
    run = Run(__doc__, lambda parser: parser.add_argument("--threads", type=int, default=2))
    torch.set_num_threads(run.args.threads)
    run.mlp(mlp_step, mlp_infer)
    if run.wanted("chain"):
        run.figures["scalar_chain_ns_per_op"] = scalar_chain(run.short) * 1e9
    if run.wanted("fit_line"):
        run.figures["fit_line_ms"] = fit_line(run.long) * 1e3
    run.matmuls(matmul_fwd, matmul_fwd_bwd)
    run.cnn(cnn_step, cnn_infer, conv2d_gflops)
    if run.wanted("makemore"):
        for kind in ("transformer", "gru"):
            run.figures[f"makemore_{kind}_step_ms"] = makemore_torch.step_ms(kind, run.long, time_median)
            run.figures[f"makemore_{kind}_sample_ms"] = makemore_torch.sample_ms(kind, run.long, time_median)
    run.figures["_torch_version"] = torch.__version__
    run.figures["_torch_threads"] = torch.get_num_threads()
    run.figures["_torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    run.print()


if __name__ == "__main__":
    main()
