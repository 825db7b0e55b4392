#!/usr/bin/python3
"""PyTorch reference for the benchmark workloads W1..W5 of shared/WORKLOADS.md and V1 (one ViT-T block).

Prints the same machine-readable lines as the C++ benchmarks:
    RESULT <workload> <metric> <value> [unit]
so scripts/bench can put both side by side. Run with Debian's python3-torch on 2 threads:
    OMP_NUM_THREADS=2 /usr/bin/python3 benchmarks/torch_reference.py --workloads W4,W5
    /usr/bin/python3 benchmarks/torch_reference.py --quick          # every workload in ~2 min
    /usr/bin/python3 benchmarks/torch_reference.py --workloads W1 --batch 1024 --size 28   # scaling point

Each workload also prints its peak resident memory (RESULT <w> peak_mib / baseline_mib /
peak_over_baseline_mib, MiB): peak = resource.getrusage ru_maxrss of the whole process, baseline =
resident set after `import torch` and the BLAS check, before the workload builds its model and data.
The peak is the process's, so measure memory with ONE workload per process (scripts/bench does).
"""
import argparse
import os
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def report(workload, metric, value, unit=""):
    print(f"RESULT {workload} {metric} {value:.6g}{' ' + unit if unit else ''}", flush=True)


def describe(what, samples):
    med = statistics.median(samples)
    spread = (max(samples) - min(samples)) / med if med > 0 else 0.0
    print(f"# {what}: median {med * 1e3:.3f} ms, min {min(samples) * 1e3:.3f} ms, "
          f"spread {spread * 100:.1f}% over {len(samples)} runs", flush=True)


def peak_rss_mib():
    """High-water mark of this process's resident set, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib():
    """Resident set now, MiB (/proc/self/statm field 2, in pages); the peak where that is unreadable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def report_memory(workload, baseline_mib):
    """The same three lines as benchmarks/peak_memory.hpp."""
    peak = peak_rss_mib()
    print(f"# {workload} peak resident memory: {peak:.1f} MiB (baseline {baseline_mib:.1f} MiB, "
          f"workload {peak - baseline_mib:.1f} MiB)", flush=True)
    report(workload, "peak_mib", peak, "MiB")
    report(workload, "baseline_mib", baseline_mib, "MiB")
    report(workload, "peak_over_baseline_mib", peak - baseline_mib, "MiB")


def time_repeats(fn, warmup=1, min_repeats=3, min_seconds=1.0, max_repeats=1000):
    """fn() `warmup` times untimed, then >= min_repeats timed calls and >= min_seconds of calls."""
    for _ in range(warmup):
        fn()
    samples = []
    while len(samples) < max_repeats and (len(samples) < min_repeats or sum(samples) < min_seconds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def time_steps(step, warmup, steps):
    """Training-step protocol: `warmup` untimed steps, then `steps` timed ones (median)."""
    return time_repeats(step, warmup=warmup, min_repeats=steps, min_seconds=0.0, max_repeats=steps)


# ---------------------------------------------------------------- encoders

class ConvNetS(nn.Module):
    """1x28x28 -> 256: four conv3x3 (no bias) + BN + ReLU, strides 1,2,2,2, then global average pool
    (the pool makes it take any image size: 1xSxS -> 256xceil(S/8)xceil(S/8) -> 256)."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for cout, stride in [(32, 1), (64, 2), (128, 2), (256, 2)]:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


class Block(nn.Module):
    """Pre-norm transformer block: x + proj(MHSA(LN(x))), x + fc2(GELU(fc1(LN(x))))."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (c // h) ** -0.5).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.ffn(self.norm2(x))

    def ffn(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def init_vit_weights(module):
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ViTT4(nn.Module):
    """ViT-T/4 for 1x28x28 (7x7 patches of 4x4), dim 192, depth 6, 3 heads, final LayerNorm."""

    def __init__(self, dim=192, depth=6, heads=3, grid=7):
        super().__init__()
        self.grid, self.dim = grid, dim
        self.patch_embed = nn.Conv2d(1, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        init_vit_weights(self)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def patch_pos(self, g):
        """Position embedding of a g x g patch grid (bicubic resize of the 7x7 one when g != 7)."""
        pos = self.pos_embed[:, 1:]
        if g == self.grid:
            return pos
        pos = pos.reshape(1, self.grid, self.grid, self.dim).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(g, g), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1).reshape(1, g * g, self.dim)

    def embed(self, x):
        """(B,1,H,W) -> patch tokens with position added (B, P, dim)."""
        x = self.patch_embed(x)
        g = x.shape[-1]
        return x.flatten(2).transpose(1, 2) + self.patch_pos(g)

    def run_blocks(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        """CLS output (B, dim)."""
        t = self.embed(x)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(t.shape[0], -1, -1)
        return self.run_blocks(torch.cat([cls, t], dim=1))[:, 0]


# ---------------------------------------------------------------- W1 SimCLR

def nt_xent(h, temperature=0.5):
    z = F.normalize(h, dim=1)
    n2 = z.shape[0]
    s = (z @ z.t()) / temperature
    s = s.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    target = (torch.arange(n2) + n2 // 2) % n2
    return F.cross_entropy(s, target)


def w1_name(batch, size):
    """W1 at its WORKLOADS.md shape (batch 256, 28x28), else W1_b<batch>_s<size> (as w1_simclr.cpp)."""
    return "W1" if (batch, size) == (256, 28) else f"W1_b{batch}_s{size}"


def workload_w1(args):
    """W1 step; --batch / --size change it for the scaling table. Returns the workload name."""
    b, sz = args.batch, args.size
    torch.manual_seed(0)
    enc = ConvNetS()
    head = nn.Sequential(nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Linear(256, 128))
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.06, momentum=0.9, weight_decay=5e-4)
    x1, x2 = torch.rand(b, 1, sz, sz), torch.rand(b, 1, sz, sz)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nt_xent(head(enc(torch.cat([x1, x2]))), 0.5)
        loss.backward()
        opt.step()

    s = time_steps(step, args.warmup, args.steps)
    name = w1_name(b, sz)
    describe(f"W1 SimCLR step (batch {b}, {sz}x{sz})", s)
    report(name, "ms_per_step", statistics.median(s) * 1e3, "ms")
    report(name, "img_per_s", b / statistics.median(s), "img/s")
    return name


# ---------------------------------------------------------------- W2 MAE

def patchify(imgs):
    """(B,1,28,28) -> (B,49,16), row-major within each 4x4 patch."""
    b = imgs.shape[0]
    return imgs.reshape(b, 7, 4, 7, 4).permute(0, 1, 3, 2, 4).reshape(b, 49, 16)


class MAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = ViTT4()
        self.decoder_embed = nn.Linear(192, 128)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 128))
        self.decoder_pos = nn.Parameter(torch.zeros(1, 50, 128))
        self.decoder_blocks = nn.ModuleList([Block(128, 4) for _ in range(2)])
        self.decoder_norm = nn.LayerNorm(128, eps=1e-6)
        self.decoder_pred = nn.Linear(128, 16)
        for m in [self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred]:
            init_vit_weights(m)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos, std=0.02)

    def forward(self, imgs, keep=12):
        enc = self.encoder
        x = enc.embed(imgs)  # (B,49,192), position added before the gather
        b = x.shape[0]
        ids_shuffle = torch.argsort(torch.rand(b, 49), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, 192))
        mask = torch.ones(b, 49)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(b, -1, -1)
        x = enc.run_blocks(torch.cat([cls, x], dim=1))
        # decoder
        x = self.decoder_embed(x)
        tokens = torch.cat([x[:, 1:], self.mask_token.expand(b, 49 - keep, -1)], dim=1)
        tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).expand(-1, -1, 128))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        # norm_pix_loss on masked patches
        target = patchify(imgs)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(-1)
        return (loss * mask).sum() / mask.sum()


def workload_w2(args):
    torch.manual_seed(0)
    model = MAE()
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)
    imgs = torch.rand(256, 1, 28, 28)

    def step():
        opt.zero_grad(set_to_none=True)
        model(imgs).backward()
        opt.step()

    s = time_steps(step, args.warmup, args.steps)
    describe("W2 MAE step", s)
    report("W2", "ms_per_step", statistics.median(s) * 1e3, "ms")
    report("W2", "img_per_s", 256 / statistics.median(s), "img/s")


# ---------------------------------------------------------------- W3 DINO

class DINOHead(nn.Module):
    def __init__(self, in_dim=192, hidden=512, bottleneck=128, out_dim=4096):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        init_vit_weights(self.mlp)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        return self.last_layer(F.normalize(self.mlp(x), dim=-1, p=2))


class DINOModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ViTT4()
        self.head = DINOHead()

    def forward(self, crops_by_size):
        """Backbone once per resolution group, head once on all CLS outputs."""
        return self.head(torch.cat([self.backbone(c) for c in crops_by_size]))


def dino_loss(student_out, teacher_out, center, n_crops=6, student_t=0.1, teacher_t=0.04):
    s = (student_out / student_t).chunk(n_crops)
    t = F.softmax((teacher_out - center) / teacher_t, dim=-1).detach().chunk(2)
    total, n = 0.0, 0
    for iq, q in enumerate(t):
        for v in range(n_crops):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            n += 1
    return total / n


def workload_w3(args):
    torch.manual_seed(0)
    student, teacher = DINOModel(), DINOModel()
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1.25e-4, weight_decay=0.04)
    center = torch.zeros(1, 4096)
    globals_ = torch.rand(128, 1, 28, 28)  # 2 global crops x 64 images
    locals_ = torch.rand(256, 1, 12, 12)   # 4 local crops x 64 images

    def step():
        nonlocal center
        with torch.no_grad():
            t_out = teacher([globals_])
        s_out = student([globals_, locals_])
        loss = dino_loss(s_out, t_out, center)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            center = center * 0.9 + t_out.mean(dim=0, keepdim=True) * 0.1
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(0.996).add_(ps.detach(), alpha=0.004)

    s = time_steps(step, args.warmup, args.steps)
    describe("W3 DINO step", s)
    report("W3", "ms_per_step", statistics.median(s) * 1e3, "ms")
    report("W3", "img_per_s", 64 / statistics.median(s), "img/s")


# ---------------------------------------------------------------- W4 GEMM

def workload_w4(args):
    min_seconds = 0.3 if args.quick else 1.0
    for n in [256, 512, 1024, 2048]:
        a, b = torch.rand(n, n), torch.rand(n, n)
        flop = 2.0 * n ** 3
        s = time_repeats(lambda: torch.matmul(a, b), 1, 3, min_seconds)
        describe(f"W4_n{n} torch.matmul", s)
        report(f"W4_n{n}", "gflops", flop / statistics.median(s) * 1e-9, "GFLOP/s")
        an, bn = a.numpy(), b.numpy()
        s = time_repeats(lambda: an @ bn, 1, 3, min_seconds)
        describe(f"W4_n{n} numpy", s)
        report(f"W4_n{n}_numpy", "gflops", flop / statistics.median(s) * 1e-9, "GFLOP/s")


# ---------------------------------------------------------------- W5 kNN

def knn_predict(train, train_labels, test, k=20, temperature=0.07, chunk=1000, classes=10):
    preds = []
    for i in range(0, test.shape[0], chunk):
        sim = test[i:i + chunk] @ train.t()
        val, idx = sim.topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], classes).scatter_add_(1, train_labels[idx], (val / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def workload_w5(args):
    torch.manual_seed(0)
    train = F.normalize(torch.randn(60000, 256), dim=1)
    test = F.normalize(torch.randn(10000, 256), dim=1)
    ytr, yte = torch.randint(0, 10, (60000,)), torch.randint(0, 10, (10000,))
    acc = []
    s = time_repeats(lambda: acc.append((knn_predict(train, ytr, test) == yte).float().mean().item()), 0,
                     args.knn_repeats, 0.0, args.knn_repeats)
    print(f"# W5 accuracy {acc[-1]:.4f} (chance 0.1)")
    describe("W5 knn", s)
    report("W5", "queries_per_s", 10000 / statistics.median(s), "queries/s")
    report("W5", "seconds", statistics.median(s), "s")


# ---------------------------------------------------------------- main

def check_blas():
    """Debian's torch uses whatever libblas.so.3 points to; the reference BLAS is ~30x slower."""
    info = torch.__config__.show()
    blas = re.findall(r"BLAS_INFO=[^,\s]+", info)
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    torch.matmul(a, b)
    t0 = time.perf_counter()
    torch.matmul(a, b)
    gflops = 2 * 1024 ** 3 / (time.perf_counter() - t0) * 1e-9
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, {', '.join(blas) or 'BLAS_INFO unknown'}, "
          f"matmul 1024: {gflops:.1f} GFLOP/s", flush=True)
    if gflops < 20:
        print("WARN: torch.matmul runs at %.1f GFLOP/s: torch is probably on the reference BLAS; "
              "install libopenblas0 (apt-get install libopenblas-dev) so libblas.so.3 points to OpenBLAS" % gflops,
              flush=True)


# ---------------------------------------------------------------- V1 one ViT-T block (benchmarks/vit_block.cpp)

class SwiGLUBlock(Block):
    """Block with DINOv2's SwiGLU feed-forward: w3(silu(x1) * x2), (x1, x2) = w12(h).chunk(2, -1)."""

    def __init__(self, dim, heads, hidden):
        super().__init__(dim, heads)
        del self.fc1, self.fc2
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def ffn(self, x):
        x1, x2 = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(x1) * x2)


def workload_v1(args):
    """One ViT-T block forward + backward (dx and every weight gradient) on (256, 50, 192) tokens,
    GELU MLP (V1) and SwiGLU with DINOv2's width 512 (V1_swiglu)."""
    torch.manual_seed(0)
    x = torch.randn(256, 50, 192, requires_grad=True)
    dy = 1e-3 * torch.randn(256, 50, 192)
    for name, block in [("V1", Block(192, 3)), ("V1_swiglu", SwiGLUBlock(192, 3, 512))]:
        init_vit_weights(block)

        def step():
            block.zero_grad(set_to_none=True)
            x.grad = None
            block(x).backward(dy)

        s = time_steps(step, args.warmup, args.steps)
        describe(f"{name} ViT-T block forward + backward", s)
        report(name, "ms_per_step", statistics.median(s) * 1e3, "ms")
        report(name, "img_per_s", 256 / statistics.median(s), "img/s")


WORKLOADS = {"W1": workload_w1, "W2": workload_w2, "W3": workload_w3, "W4": workload_w4, "W5": workload_w5,
             "V1": workload_v1}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5", help="comma-separated subset of W1..W5, V1")
    p.add_argument("--steps", type=int, default=20, help="timed training steps for W1-W3, V1 (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps for W1-W3, V1 (default 3)")
    p.add_argument("--knn-repeats", type=int, default=3, help="timed end-to-end kNN runs for W5 (default 3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256, help="W1 only: images per step (scaling table; default 256)")
    p.add_argument("--size", type=int, default=28, help="W1 only: image side (scaling table; default 28)")
    p.add_argument("--quick", action="store_true", help="3 steps after 1 warm-up, 1 kNN run, 0.3 s per GEMM size")
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup, args.knn_repeats = 3, 1, 1
    torch.set_num_threads(args.threads)
    check_blas()
    chosen = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    for w in chosen:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload {w}; choose from {', '.join(WORKLOADS)}")
    if len(chosen) > 1:
        print("# several workloads in one process: each peak_mib is the process's peak so far "
              "(run one workload per process for its own peak)", flush=True)
    for w in chosen:
        baseline = current_rss_mib()  # after import torch + check_blas, before the model and data
        name = WORKLOADS[w](args) or w
        report_memory(name, baseline)


if __name__ == "__main__":
    main()
