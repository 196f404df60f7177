#!/usr/bin/env python3
"""Processor time of one-thread inference: cnnslicer builds beside ONNX Runtime.

    python3 tools/bench_cpu.py MODELS ROUNDS NAME=BINARY [NAME=BINARY ...]
    e.g. python3 tools/bench_cpu.py resnet18,cifar_vgg 2 base=/tmp/base-cnnslicer new=.build/release/cnnslicer

For a machine too loaded for wall-clock ratios (tools/bench.py): each build's
`cnnslicer bench --infer-only --threads 1 --batch 64 --repeats 3` (its
`infer_cpu_s`, median of 3) and tools/bench_peers.py with one thread (`cpu_s`,
median of 3), interleaved per model and round; prints each round and the
ratios of the medians (ORT's processor time / ours: above 1 means faster than
ONNX Runtime). Models come from bench-out/ (tools/bench.py exports them):
64 images per run for the 224x224 torchvision models, 1,024 for the shipped ones.
Run from the repository root with a Python that has onnxruntime.
"""
import json
import statistics
import subprocess
import sys

TORCHVISION = {'vgg11_bn', 'resnet18', 'resnet50', 'mobilenet_v2'}


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    models = sys.argv[1].split(',')
    rounds = int(sys.argv[2])
    builds = dict(spec.split('=', 1) for spec in sys.argv[3:])
    results = {m: {k: [] for k in list(builds) + ['ort']} for m in models}
    for r in range(rounds):
        for m in models:
            path = 'bench-out/%s.onnx' % (m + '-224-bn-op13' if m in TORCHVISION else m)
            images = '64' if m in TORCHVISION else '1024'
            for name, binary in builds.items():
                out = subprocess.run([binary, 'bench', '--model', path, '--images', images, '--batch', '64',
                                      '--threads', '1', '--infer-only', '--repeats', '3'],
                                     check=True, capture_output=True, text=True).stdout
                results[m][name].append(json.loads(out)['infer_cpu_s'])
            out = subprocess.run([sys.executable, 'tools/bench_peers.py', path, '--runs', '3', '--batch', '64',
                                  '--images', images, '--threads', '1'], check=True, capture_output=True, text=True).stdout
            results[m]['ort'].append(json.loads(out)['cpu_s'])
            print('round %d %-13s ' % (r + 1, m) + '  '.join('%s %.3f s' % (k, v[-1]) for k, v in results[m].items()),
                  flush=True)
    names = list(builds)
    print('| model | ' + ' | '.join('%s / ORT' % n for n in names) + ' | %s / %s |' % (names[-1], names[0]))
    print('| --- |' + ' ---: |' * (len(names) + 1))
    for m in models:
        med = {k: statistics.median(v) for k, v in results[m].items()}
        print('| %s | ' % m + ' | '.join('%.2f×' % (med['ort'] / med[n]) for n in names)
              + ' | %.2f |' % (med[names[0]] / med[names[-1]]))


if __name__ == '__main__':
    main()
