#!/usr/bin/env python3
"""PyTorch inference throughput for the benchmark architectures.

    /usr/bin/python3 tools/bench_torch.py ARCH [--batch 64] [--images 2048] [--runs 3]
                                          [--threads 2]

ARCH is mnist_cnn, cifar_vgg or cifar_resnet (a path such as OUT/cifar_vgg.onnx is
accepted too: its base name selects the architecture; torch cannot load ONNX,
so the model is re-created from tools/bench_models.py with the same seed), or
vgg11_bn, mobilenet_v2, resnet18, resnet50 (or OUT/resnet50-224-bn-op13.onnx):
torchvision's architecture with random weights at 224x224.
torch.set_num_threads(2), eval mode, torch.no_grad(); seeded standard normal
input; two warm-up batches, then >= 3 timed runs of --images images; prints one
JSON line with the median: {"runtime": "pytorch", "images_per_s": ..., ...}
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_models  # noqa: E402

# torchvision ImageNet classifiers that tools/bench.py measures at 224x224.
TORCHVISION = ['vgg11_bn', 'mobilenet_v2', 'resnet18', 'resnet50']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('arch')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--images', type=int, default=2048)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    name = os.path.splitext(os.path.basename(a.arch))[0]
    # bench-out/resnet50-224-bn-op13.onnx: the torchvision architecture at 224x224.
    tv_name = name.split('-')[0]
    torch.manual_seed(0)
    if name in bench_models.ARCHS:
        model = bench_models.build(name).eval()
        chw = bench_models.ARCHS[name]
    elif tv_name in TORCHVISION:
        import torchvision.models as models
        name = tv_name
        model = getattr(models, name)(weights=None, num_classes=1000).eval()
        chw = (3, 224, 224)
    else:
        raise SystemExit('unknown architecture %r (known: %s)' % (name, ', '.join(list(bench_models.ARCHS) + TORCHVISION)))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.batch, *chw, generator=g)
    nb = max(1, (a.images + a.batch - 1) // a.batch)
    last = a.images - (nb - 1) * a.batch
    batches = [x] * (nb - 1) + [x[:last]]
    images = sum(len(b) for b in batches)
    rates = []
    with torch.no_grad():
        for _ in range(2):
            model(x)
        for _ in range(max(3, a.runs)):
            t0 = time.perf_counter()
            for b in batches:
                model(b)
            rates.append(images / (time.perf_counter() - t0))
    print(json.dumps({'runtime': 'pytorch', 'version': torch.__version__, 'model': name,
                      'input_shape': list(chw), 'batch': a.batch, 'images': images,
                      'runs': len(rates), 'threads': a.threads,
                      'images_per_s': round(statistics.median(rates), 1),
                      'all_images_per_s': [round(r, 1) for r in rates]}))


if __name__ == '__main__':
    main()
