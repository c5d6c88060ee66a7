"""PyTorch float64 forward values and gradients for the ops and losses that the shared
`ops.json` lacks: `torch.prod` (with zeros in the input), `F.smooth_l1_loss` with its `beta`, and
`torch.linalg.solve` (a matrix or a vector of right-hand sides, batched, broadcast batch axes, a
system that needs row swaps).

usage: python gen_golden_extra.py OUT.json
The format is ops.json's: op name, attrs, inputs (shape + values), output (shape + values),
and the gradient of sum(output * w) w.r.t. every input, where w (the upstream gradient) is
given too.
"""
import json, sys
import torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(27)

def rnd(*shape, lo=-2.0, hi=2.0):
    return torch.rand(tuple(shape), generator=g) * (hi - lo) + lo

cases = []
def case(op, fn, inputs, attrs=None, note=""):
    xs = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*xs)
    w = rnd(*out.shape)
    grads = torch.autograd.grad((out * w).sum(), xs)
    cases.append({
        "op": op, "attrs": attrs or {}, "note": note,
        "inputs": [{"shape": list(x.shape), "dtype": "f64", "values": x.detach().flatten().tolist()} for x in xs],
        "output": {"shape": list(out.shape), "values": out.detach().flatten().tolist()},
        "upstream": w.flatten().tolist(),
        "grads": [gr.flatten().tolist() for gr in grads],
    })

def with_zeros(t, *indices):
    t = t.clone()
    for i in indices:
        t.view(-1)[i] = 0.0
    return t

case("prod_all", lambda a: a.prod(), [rnd(2, 3)])
case("prod_axis", lambda a: a.prod(1), [rnd(2, 3, 4)], {"axis": 1, "keepdim": False})
case("prod_axis_keepdim", lambda a: a.prod(-1, keepdim=True), [rnd(3, 4)], {"axis": -1, "keepdim": True})
case("prod_all_one_zero", lambda a: a.prod(), [with_zeros(rnd(2, 3), 4)], note="one zero: only its gradient is non-zero")
case("prod_all_two_zeros", lambda a: a.prod(), [with_zeros(rnd(2, 3), 1, 4)], note="two zeros: every gradient is zero")
case("prod_axis_zeros", lambda a: a.prod(1), [with_zeros(rnd(3, 4), 1, 8, 9)], {"axis": 1, "keepdim": False},
     note="row 0 one zero, row 1 none, row 2 two zeros")
yp, yt = rnd(4, 3) * 2, rnd(4, 3)
for beta in (0.5, 1.0, 2.0):
    case("smooth_l1", lambda a, b: F.smooth_l1_loss(a, b, beta=beta), [yp, yt], {"beta": beta})

# Cases appended after the ones above, so that their random draws stay the same.
def well_conditioned(*shape):
    """A random [*, n, n] matrix in [-1, 1) plus n·I: strictly diagonally dominant, far from singular."""
    n = shape[-1]
    return rnd(*shape, lo=-1.0, hi=1.0) + n * torch.eye(n)

solve = torch.linalg.solve
case("solve", solve, [well_conditioned(3, 3), rnd(3, 2)])
case("solve_vector", solve, [well_conditioned(4, 4), rnd(4)], note="B 1-D: X is a vector")
case("solve_pivoting", solve, [torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, -1.0, 4.0]]), rnd(3, 2)],
     note="A[0, 0] = 0: elimination swaps rows")
case("solve_batched", solve, [well_conditioned(2, 3, 3), rnd(2, 3, 2)])
case("solve_batched_vector", solve, [well_conditioned(2, 3, 3), rnd(2, 3)],
     note="B has A's shape without its last axis: a batch of vectors")
case("solve_broadcast", solve, [well_conditioned(2, 1, 3, 3), rnd(4, 3, 2)],
     note="batch axes [2, 1] and [4] broadcast to [2, 4]: the gradients are summed back")

json.dump({"generator": f"torch {torch.__version__} float64", "about": __doc__, "cases": cases}, open(sys.argv[1], "w"), indent=0)
print(len(cases), "cases")
