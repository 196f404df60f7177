#!/usr/bin/env python3
"""ONNX Runtime throughput on synthetic input (a peer for `make bench`).

    python3 tools/bench_peers.py MODEL.onnx [--batch 64] [--images 2048] [--runs 3]
                                 [--threads 2]

Runs with a Python that has the pip package onnxruntime (not Debian's python3).
Session: CPU provider, intra_op_num_threads=2 (--threads), inter_op_num_threads=1,
sequential execution, default graph optimisations.  Input: seeded standard
normal values of the model's (C, H, W), batches of --batch images.  Two warm-up
batches, then --runs (>= 3) timed runs of --images images each; prints one JSON
line with the median throughput:
    {"runtime": "onnxruntime", "images_per_s": ..., ...}
"""
import argparse
import json
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--images', type=int, default=2048)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.model, so, providers=['CPUExecutionProvider'])
    inp = sess.get_inputs()[0]
    chw = [int(d) for d in inp.shape[1:]]
    out_name = sess.get_outputs()[0].name
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, *chw)).astype(np.float32)
    nb = max(1, (a.images + a.batch - 1) // a.batch)
    last = a.images - (nb - 1) * a.batch
    batches = [x] * (nb - 1) + [x[:last]]
    images = sum(len(b) for b in batches)

    for _ in range(2):
        sess.run([out_name], {inp.name: x})
    rates, cpu = [], []
    for _ in range(max(3, a.runs)):
        t0, c0 = time.perf_counter(), time.process_time()
        for b in batches:
            sess.run([out_name], {inp.name: b})
        rates.append(images / (time.perf_counter() - t0))
        cpu.append(time.process_time() - c0)
    print(json.dumps({'runtime': 'onnxruntime', 'version': ort.__version__,
                      'model': a.model, 'input_shape': chw, 'batch': a.batch,
                      'images': images, 'runs': len(rates), 'threads': a.threads,
                      'images_per_s': round(statistics.median(rates), 1),
                      # Processor seconds of all threads per run (ORT's pool spins
                      # while waiting, so compare per-CPU rates at one thread only).
                      'cpu_s': round(statistics.median(cpu), 3),
                      'all_images_per_s': [round(r, 1) for r in rates]}))


if __name__ == '__main__':
    main()
