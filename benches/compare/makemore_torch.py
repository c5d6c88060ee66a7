"""PyTorch's side of the makemore figures (group `makemore` of torch_bench.py): the
Transformer and the GRU language model of examples/makemore.rs (makemore's definitions and
sizes: 4 blocks, 4 heads, width 64, hidden 64, block size 16, 27 symbols), written here
with torch.nn, trained with AdamW (lr 5e-4, weight decay 0.01, betas 0.9/0.99, eps 1e-8)
on batches of 32 rows of names.txt, and sampled 10 names at a time.
"""

import math
import os
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
N_EMBD = 64
N_EMBD2 = 64
N_HEAD = 4
N_LAYER = 4


def names_rows():
    """makemore's rows of data/names/names.txt: x = [0, word, 0...], y = [word, 0, -1...]."""
    with open(os.path.join(ROOT, "data", "names", "names.txt")) as f:
        words = [w.strip() for w in f.read().splitlines() if w.strip()]
    chars = sorted(set("".join(words)))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    block = max(len(w) for w in words) + 1
    x = torch.zeros(len(words), block, dtype=torch.long)
    y = torch.full((len(words), block), -1, dtype=torch.long)
    for r, w in enumerate(words):
        ix = [stoi[c] for c in w]
        x[r, 1 : 1 + len(ix)] = torch.tensor(ix)
        y[r, : len(ix)] = torch.tensor(ix)
        y[r, len(ix)] = 0
    return x, y, len(chars) + 1, block


class Attention(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.proj = nn.Linear(N_EMBD, N_EMBD)
        self.register_buffer("hidden", torch.ones(block, block).triu(1).bool())

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(N_EMBD, dim=2)
        q, k, v = (z.view(b, t, N_HEAD, c // N_HEAD).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // N_HEAD)
        weights = scores.masked_fill(self.hidden[:t, :t], float("-inf")).softmax(-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD)
        self.attn = Attention(block)
        self.ln_2 = nn.LayerNorm(N_EMBD)
        self.fc = nn.Linear(N_EMBD, 4 * N_EMBD)
        self.out = nn.Linear(4 * N_EMBD, N_EMBD)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, vocab, block):
        super().__init__()
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.wpe = nn.Embedding(block, N_EMBD)
        self.blocks = nn.ModuleList(Block(block) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.head = nn.Linear(N_EMBD, vocab, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class Gru(nn.Module):
    """makemore's GRU frame: the cell acts on the concatenation [x, h]."""

    def __init__(self, vocab, block):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, N_EMBD2))
        self.wte = nn.Embedding(vocab, N_EMBD)
        self.z = nn.Linear(N_EMBD + N_EMBD2, N_EMBD2)
        self.r = nn.Linear(N_EMBD + N_EMBD2, N_EMBD2)
        self.hbar = nn.Linear(N_EMBD + N_EMBD2, N_EMBD2)
        self.head = nn.Linear(N_EMBD2, vocab)

    def forward(self, idx):
        emb = self.wte(idx)
        h = self.start.expand(idx.shape[0], -1)
        hiddens = []
        for t in range(idx.shape[1]):
            xt = emb[:, t, :]
            xh = torch.cat([xt, h], 1)
            r = torch.sigmoid(self.r(xh))
            hbar = torch.tanh(self.hbar(torch.cat([xt, r * h], 1)))
            z = torch.sigmoid(self.z(xh))
            h = (1 - z) * h + z * hbar
            hiddens.append(h)
        return self.head(torch.stack(hiddens, 1))


MODELS = {"transformer": Transformer, "gru": Gru}


def step_ms(kind, budget, time_median):
    """Median milliseconds of one AdamW step on 32 random rows."""
    torch.manual_seed(3407)
    x, y, vocab, block = names_rows()
    model = MODELS[kind](vocab, block)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
    rng = random.Random(3407)

    def batch():
        rows = torch.tensor([rng.randrange(x.shape[0]) for _ in range(32)])
        return x[rows], y[rows]

    def step(xy):
        xb, yb = xy
        logits = model(xb)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), yb.view(-1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()

    return time_median(budget, 3, step, setup=batch) * 1e3


def sample_ms(kind, budget, time_median):
    """Median milliseconds to sample 10 names of up to block - 1 characters (makemore's
    generate: the whole prefix again at each step, softmax, multinomial)."""
    torch.manual_seed(3407)
    _, _, vocab, block = names_rows()
    model = MODELS[kind](vocab, block)
    model.eval()

    @torch.no_grad()
    def sample():
        idx = torch.zeros(10, 1, dtype=torch.long)
        for _ in range(block - 1):
            logits = model(idx)[:, -1, :]
            nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, nxt), dim=1)
        idx[0, 0].item()

    return time_median(budget, 2, sample) * 1e3
