#!/usr/bin/env python3
"""Benchmark cnnslicer against ONNX Runtime and PyTorch in one run.

    python3 tools/bench.py [--images 2048] [--imagenet-images 128] [--batch 64] [--threads 2]
                           [--rounds 3] [--models cifar_vgg,resnet50,...]

Needs: a release build (.build/release/cnnslicer), onnxruntime for this
Python (PyPI), and Debian's python3-torch and python3-torchvision for
/usr/bin/python3 (`make bench` installs them). Exports the three shipped
benchmark models (random weights) with tools/bench_models.py and the four
torchvision ImageNet models of issue 13 (vgg11_bn, mobilenet_v2, resnet18,
resnet50 at 224x224, 1,000 classes, BatchNormalization kept, random weights)
with tools/export_torchvision.py into bench-out/ (a cache, not committed), then
runs, per round and per model,
cnnslicer bench, tools/bench_peers.py (ONNX Runtime) and tools/bench_torch.py
(PyTorch) one after the other, so that load changes on a shared machine hit
all three alike. Reports the median over rounds and the ratios, which are
what BENCHMARKS.md records; absolute figures vary with the machine's load.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'bench-out')
SHIPPED = ['mnist_cnn', 'cifar_vgg', 'cifar_resnet']
# ImageNet-sized torchvision architectures: a timed run is --imagenet-images
# images (VGG-11 runs at tens of images/s on two cores, not thousands).
TORCHVISION = ['vgg11_bn', 'mobilenet_v2', 'resnet18', 'resnet50']
MODELS = SHIPPED + TORCHVISION
TORCH_PYTHON = '/usr/bin/python3'


def model_path(m):
    if m in TORCHVISION:
        return os.path.join(OUT, '%s-224-bn-op13.onnx' % m)
    return os.path.join(OUT, m + '.onnx')


def ensure_models(models):
    """Exports the models missing from bench-out/ (seeded: the same file every time)."""
    if any(not os.path.exists(model_path(m)) for m in models if m in SHIPPED):
        subprocess.run([TORCH_PYTHON, 'tools/bench_models.py', OUT], check=True, cwd=ROOT)
    for m in models:
        if m in TORCHVISION and not os.path.exists(model_path(m)):
            subprocess.run([TORCH_PYTHON, 'tools/export_torchvision.py', '--model', m, '--size', '224',
                            '--out', OUT], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def images_for(m, a):
    return a.imagenet_images if m in TORCHVISION else a.images


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def main():
    global MODELS
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', type=int, default=2048)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--imagenet-images', type=int, default=128,
                    help='images per timed run of the 224x224 torchvision models')
    ap.add_argument('--models', default=','.join(SHIPPED + TORCHVISION),
                    help='comma-separated subset of: ' + ', '.join(SHIPPED + TORCHVISION))
    ap.add_argument('--binary', action='append', default=[], metavar='NAME=PATH',
                    help='compare builds: each named cnnslicer binary is run in every round, '
                         'interleaved with ONNX Runtime (PyTorch is skipped); repeatable')
    a = ap.parse_args()
    MODELS = [m for m in a.models.split(',') if m]
    unknown = [m for m in MODELS if m not in SHIPPED + TORCHVISION]
    if unknown:
        sys.exit('bench: unknown model(s) %s; known: %s' % (', '.join(unknown), ', '.join(SHIPPED + TORCHVISION)))
    os.makedirs(OUT, exist_ok=True)
    if a.binary:
        return compare_builds(a)
    binary = os.path.join(ROOT, '.build', 'release', 'cnnslicer')
    if not os.path.exists(binary):
        sys.exit('bench: build first (make release)')
    ensure_models(MODELS)
    results = {m: {'cnnslicer': [], 'onnxruntime': [], 'pytorch': [], 'cnnslicer_analyze': [], 'pytorch_hooks': []}
               for m in MODELS}
    versions = {}
    load_before = os.getloadavg()
    started = time.time()
    for r in range(a.rounds):
        for m in MODELS:
            path = model_path(m)
            images = images_for(m, a)
            common = ['--batch', str(a.batch), '--images', str(images), '--threads', str(a.threads)]
            ours = run_json([binary, 'bench', '--model', path, '--repeats', '1'] + common)
            results[m]['cnnslicer'].append(ours['infer_images_per_s'])
            results[m]['cnnslicer_analyze'].append(ours['analyze_images_per_s'])
            if m in SHIPPED:
                # The hook pipeline is slow: a quarter of the images keeps the run short.
                hooks = run_json([TORCH_PYTHON, 'tools/bench_torch_analysis.py', m, '--runs', '1', '--batch', str(a.batch),
                                  '--images', str(max(a.batch, images // 4)), '--threads', str(a.threads)])
            else:
                hooks = {'analyze_images_per_s': float('nan')}  # not measured for the ImageNet models
            results[m]['pytorch_hooks'].append(hooks['analyze_images_per_s'])
            ort = run_json([sys.executable, 'tools/bench_peers.py', path, '--runs', '1'] + common)
            results[m]['onnxruntime'].append(ort['images_per_s'])
            versions['onnxruntime'] = ort.get('version')
            pt = run_json([TORCH_PYTHON, 'tools/bench_torch.py', m, '--runs', '1'] + common)
            results[m]['pytorch'].append(pt['images_per_s'])
            versions['pytorch'] = pt.get('version')
            print('round %d %-13s cnnslicer %8.1f  onnxruntime %8.1f  pytorch %8.1f  | analyze: cnnslicer %8.1f  pytorch hooks %8.1f images/s' % (
                r + 1, m, ours['infer_images_per_s'], ort['images_per_s'], pt['images_per_s'],
                ours['analyze_images_per_s'], hooks['analyze_images_per_s']), file=sys.stderr)
    summary = {
        'machine': {'cpu': cpu_model(), 'cores': os.cpu_count(), 'load_before': [round(x, 2) for x in load_before]},
        'settings': {'batch': a.batch, 'threads': a.threads, 'images': a.images,
                     'imagenet_images': a.imagenet_images, 'rounds': a.rounds},
        'versions': versions,
        'seconds': round(time.time() - started, 1),
        'models': {},
    }
    lines = ['| model | cnnslicer img/s | ONNX Runtime img/s | PyTorch img/s | cnnslicer / ORT | cnnslicer / PyTorch |',
             '| --- | ---: | ---: | ---: | ---: | ---: |']
    analysis = ['| model | cnnslicer analyze img/s | cnnslicer infer img/s | analyze / infer | PyTorch hooks img/s | cnnslicer / PyTorch hooks |',
                '| --- | ---: | ---: | ---: | ---: | ---: |']
    for m in MODELS:
        med = {k: statistics.median(v) for k, v in results[m].items()}
        summary['models'][m] = {'median_images_per_s': med, 'all': results[m],
                                'ratio_vs_onnxruntime': round(med['cnnslicer'] / med['onnxruntime'], 2),
                                'ratio_vs_pytorch': round(med['cnnslicer'] / med['pytorch'], 2)}
        lines.append('| %s | %.1f | %.1f | %.1f | %.2f× | %.2f× |' % (
            m, med['cnnslicer'], med['onnxruntime'], med['pytorch'],
            med['cnnslicer'] / med['onnxruntime'], med['cnnslicer'] / med['pytorch']))
        hooks = med['pytorch_hooks']
        analysis.append('| %s | %.1f | %.1f | %.2f× | %s | %s |' % (
            m, med['cnnslicer_analyze'], med['cnnslicer'], med['cnnslicer_analyze'] / med['cnnslicer'],
            '—' if hooks != hooks else '%.1f' % hooks,
            '—' if hooks != hooks else '%.0f×' % (med['cnnslicer_analyze'] / hooks)))
    with open(os.path.join(OUT, 'bench.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('machine: %s, %d cores, load before %s; onnxruntime %s, pytorch %s; batch %d, %d threads, '
          '%d images (%d for the 224x224 models) x %d rounds (median)' % (
              summary['machine']['cpu'], summary['machine']['cores'], summary['machine']['load_before'],
              versions.get('onnxruntime'), versions.get('pytorch'), a.batch, a.threads, a.images,
              a.imagenet_images, a.rounds))
    print('\n'.join(lines))
    print()
    print('\n'.join(analysis))


def compare_builds(a):
    """Several builds of cnnslicer against ONNX Runtime, interleaved per round and
    model, so that a change of build settings is measured as a change of the
    ratio to the same peer under the same load."""
    builds = []
    for spec in a.binary:
        name, _, path = spec.partition('=')
        if not path or not os.path.exists(path):
            sys.exit('bench: --binary expects NAME=PATH of an existing binary, got %r' % spec)
        builds.append((name, os.path.abspath(path)))
    ensure_models(MODELS)
    keys = ['onnxruntime'] + [n + ' infer' for n, _ in builds] + [n + ' analyze' for n, _ in builds]
    results = {m: {k: [] for k in keys} for m in MODELS}
    load_before = os.getloadavg()
    for r in range(a.rounds):
        for m in MODELS:
            path = model_path(m)
            common = ['--batch', str(a.batch), '--images', str(images_for(m, a)), '--threads', str(a.threads)]
            # Alternate the order of the builds between rounds as well.
            order = builds if r % 2 == 0 else list(reversed(builds))
            line = 'round %d %-13s' % (r + 1, m)
            for name, binary in order:
                ours = run_json([binary, 'bench', '--model', path, '--repeats', '1'] + common)
                results[m][name + ' infer'].append(ours['infer_images_per_s'])
                results[m][name + ' analyze'].append(ours['analyze_images_per_s'])
                line += '  %s %8.1f/%8.1f' % (name, ours['infer_images_per_s'], ours['analyze_images_per_s'])
            ort = run_json([sys.executable, 'tools/bench_peers.py', path, '--runs', '1'] + common)
            results[m]['onnxruntime'].append(ort['images_per_s'])
            print(line + '  onnxruntime %8.1f images/s' % ort['images_per_s'], file=sys.stderr)
    print('machine: %s, %d cores, load before %s; batch %d, %d threads, %d images x %d rounds' % (
        cpu_model(), os.cpu_count(), [round(x, 2) for x in load_before], a.batch, a.threads, a.images, a.rounds))
    names = [n for n, _ in builds]
    print('| model | round | ' + ' | '.join('%s infer / ORT' % n for n in names) + ' | '
          + ' | '.join('%s analyze / ORT' % n for n in names) + ' |')
    print('| --- | --- |' + ' ---: |' * (2 * len(names)))
    for m in MODELS:
        ort = results[m]['onnxruntime']
        rows = []
        for r in range(a.rounds):
            cells = ['%.2f' % (results[m][n + ' infer'][r] / ort[r]) for n in names]
            cells += ['%.2f' % (results[m][n + ' analyze'][r] / ort[r]) for n in names]
            rows.append('| %s | %d | %s |' % (m, r + 1, ' | '.join(cells)))
        med = {k: statistics.median([v / o for v, o in zip(results[m][k], ort)]) for k in keys if k != 'onnxruntime'}
        cells = ['**%.2f**' % med[n + ' infer'] for n in names] + ['**%.2f**' % med[n + ' analyze'] for n in names]
        rows.append('| %s | median | %s |' % (m, ' | '.join(cells)))
        print('\n'.join(rows))
    with open(os.path.join(OUT, 'bench-builds.json'), 'w') as f:
        json.dump({'builds': dict(builds), 'results': results, 'load_before': load_before}, f, indent=1)


if __name__ == '__main__':
    main()
