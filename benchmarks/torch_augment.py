#!/usr/bin/python3
"""torchvision reference for benchmarks/augment.cpp: the SimCLR view policy, two views per image,
on float (C, H, W) tensors (28x28x1 and 96x96x3), in augmented views per second.

t1: one process, torch.set_num_threads(1) (one data-loader worker);
tN: a DataLoader with N worker processes (persistent), batches of 64 images.
Prints `RESULT augment_simclr_<side>_t<threads> views_per_s <value>` lines like the C++ program.
Usage: /usr/bin/python3 benchmarks/torch_augment.py [--threads N] [--images N]
"""
import argparse
import os
import statistics
import time

import torch
import torchvision.transforms as T


def simclr_view(side, mean, std, s=1.0):
    k = max(3, int(0.1 * side))
    k = k if k % 2 else k + 1
    return T.Compose([
        T.RandomResizedCrop(side),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5),
        T.Normalize(mean, std),
    ])


class Views(torch.utils.data.Dataset):
    def __init__(self, images, view):
        self.images, self.view = images, view

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        return self.view(x), self.view(x)


def timed(fn, min_repeats=5, min_seconds=1.0):
    fn()
    samples = []
    while len(samples) < min_repeats or sum(samples) < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def run(name, images, view, threads):
    n = len(images)
    torch.set_num_threads(1)

    def one_process():
        for x in images:
            view(x), view(x)

    t = timed(one_process)
    print(f"# {name} threads 1: median {t * 1e3:.3f} ms")
    print(f"RESULT {name}_t1 views_per_s {2 * n / t:.6g}", flush=True)
    if threads > 1:
        loader = torch.utils.data.DataLoader(Views(images, view), batch_size=64, num_workers=threads,
                                             persistent_workers=True)

        def workers():
            for _ in loader:
                pass

        t = timed(workers)
        print(f"# {name} threads {threads} (DataLoader workers): median {t * 1e3:.3f} ms")
        print(f"RESULT {name}_t{threads} views_per_s {2 * n / t:.6g}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    p.add_argument("--images", type=int, default=512)
    a = p.parse_args()
    g = torch.Generator().manual_seed(7)
    fm = [torch.rand(1, 28, 28, generator=g) for _ in range(a.images)]
    rgb = [torch.rand(3, 96, 96, generator=g) for _ in range(a.images)]
    run("augment_simclr_28", fm, simclr_view(28, [0.2860], [0.3530]), a.threads)
    run("augment_simclr_96", rgb, simclr_view(96, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), a.threads)


if __name__ == "__main__":
    main()
