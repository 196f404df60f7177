#!/usr/bin/env python3
"""The Python pipeline CNNSlicer replaces: PyTorch forward hooks + histograms.

    /usr/bin/python3 tools/bench_torch_analysis.py ARCH [--batch 64] [--images 2048] [--runs 3] [--threads 2]

Does the same work as `cnnslicer bench`'s analysis, vectorised in PyTorch:
forward hooks on every leaf module (conv, BN, ReLU, pool, linear) plus the
input; per tap a range from a calibration batch; per batch the bins of every
value, per-image per-channel histograms with one bincount, instance entropies
per image and channel and per image and tap, and per-class ensemble
histograms accumulated with index_add. Prints one JSON line with the median
images/s over the timed runs (after a warm-up run).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('arch')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--images', type=int, default=2048)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bins', type=int, default=64)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    name = os.path.splitext(os.path.basename(a.arch))[0]
    torch.manual_seed(0)
    model = bench_models.build(name).eval()
    chw = bench_models.ARCHS[name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.batch, *chw, generator=g)
    labels = torch.arange(a.batch) % 10
    B = a.bins
    leaves = [m for m in model.modules() if len(list(m.children())) == 0 and not isinstance(m, torch.nn.Dropout)]
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in leaves]

    def taps(batch):
        outputs.clear()
        logits = model(batch)
        return [batch] + list(outputs), logits

    with torch.no_grad():
        calib, _ = taps(x)
        ranges = [(t.min().item(), t.max().item()) for t in calib]
        state = {}

        def analyse(batch, y):
            tap_values, logits = taps(batch)
            n = batch.shape[0]
            for k, t in enumerate(tap_values):
                lo, hi = ranges[k]
                v = t.reshape(n, t.shape[1] if t.dim() > 1 else 1, -1).double()
                c = v.shape[1]
                if hi > lo:
                    b = ((v - lo) / (hi - lo) * B).floor().clamp_(0, B - 1).long()
                else:
                    b = torch.zeros_like(v, dtype=torch.long)
                base = (torch.arange(n * c).reshape(n, c, 1) * B)
                counts = torch.bincount((b + base).flatten(), minlength=n * c * B).reshape(n, c, B).double()
                p = counts / counts.sum(-1, keepdim=True)
                h_channel = -(p * torch.where(p > 0, p.log2(), torch.zeros_like(p))).sum(-1)
                layer = counts.sum(1)
                q = layer / layer.sum(-1, keepdim=True)
                h_layer = -(q * torch.where(q > 0, q.log2(), torch.zeros_like(q))).sum(-1)
                ens = state.setdefault(k, torch.zeros(10, c, B, dtype=torch.float64))
                ens.index_add_(0, y, counts)
                state.setdefault(('h', k), []).append((h_channel.float(), h_layer.float()))
            logits.argmax(1)

        nb = max(1, (a.images + a.batch - 1) // a.batch)
        last = a.images - (nb - 1) * a.batch
        batches = [(x, labels)] * (nb - 1) + [(x[:last], labels[:last])]
        images = sum(len(b[0]) for b in batches)
        analyse(x, labels)
        rates = []
        for _ in range(max(1, a.runs)):
            state.clear()
            t0 = time.perf_counter()
            for b, y in batches:
                analyse(b, y)
            rates.append(images / (time.perf_counter() - t0))
    for h in hooks:
        h.remove()
    print(json.dumps({'runtime': 'pytorch-hooks', 'version': torch.__version__, 'model': name, 'taps': len(calib),
                      'batch': a.batch, 'images': images, 'threads': a.threads, 'bins': B,
                      'analyze_images_per_s': round(statistics.median(rates), 1),
                      'all_images_per_s': [round(r, 1) for r in rates]}))


if __name__ == '__main__':
    main()
