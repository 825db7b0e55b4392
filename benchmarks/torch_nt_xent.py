#!/usr/bin/python3
"""NT-Xent forward + backward in PyTorch at N = 4096 pairs, d = 128, T = 0.5, 2 threads:
the reference for benchmarks/nt_xent.cpp. Prints the median ms of a few runs."""
import sys
import time

import torch
import torch.nn.functional as F


def nt_xent(h, tau):
    n2 = h.shape[0]
    z = F.normalize(h, dim=1)
    s = z @ z.T / tau
    s = s.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n2 // 2, n2), torch.arange(0, n2 // 2)])
    return F.cross_entropy(s, target)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.set_num_threads(2)
    pairs, dim = 4096, 128
    h = torch.randn(2 * pairs, dim, requires_grad=True)
    times = []
    for r in range(runs + 1):  # one warm-up run
        h.grad = None
        t0 = time.perf_counter()
        loss = nt_xent(h, 0.5)
        loss.backward()
        t1 = time.perf_counter()
        if r > 0:
            times.append((t1 - t0) * 1e3)
    times.sort()
    print(f"torch nt_xent fwd+bwd N={pairs} pairs d={dim} threads={torch.get_num_threads()}: "
          f"median {times[len(times) // 2]:.1f} ms over {runs} runs (loss {loss.item():.5f})")


if __name__ == "__main__":
    main()
