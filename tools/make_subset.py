#!/usr/bin/env python3
"""Make the bundled Fashion-MNIST subset in assets/data/fashion-mnist-subset/.

HOW TO RUN

    /usr/bin/python3 tools/make_subset.py [--source DIR] [--per-class N] [--record]

--source defaults to Debian's dataset-fashion-mnist install,
/usr/share/datasets/fashion-mnist/; --per-class defaults to 100.

From the Fashion-MNIST *test* set (t10k, 10,000 images) it keeps, for each of
the ten classes, the first PER_CLASS images of that class in dataset order,
and writes the chosen images in their original dataset order (not grouped by
class) as a standard IDX pair:

    t10k-images-idx3-ubyte.gz   magic 0x00000803, (N, 28, 28) unsigned bytes
    t10k-labels-idx1-ubyte.gz   magic 0x00000801, (N,) unsigned bytes

The output is deterministic: the gzip streams are written with mtime=0, no
file name in the header and compression level 9, so running the script again
gives byte-identical files (their sha256 is printed). Needs only numpy.

When tools/logs/fashion_mnist_cnn.preds.npy exists (the PyTorch test-set
predictions of the shipped model, written by tools/train_models.py), the
script also prints that model's accuracy on the subset; with --record it
stores it as models.fashion.bundled_subset_accuracy (and
bundled_subset_images) in assets/models/training_summary.json, which
tools/train_models.py rewrites: run this with --record after retraining.
The Swift test Tests/SlicerDataTests/ShippedAssetsTests.swift checks that
CNNSlicer's engine gets exactly this accuracy.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..'))
OUT_DIR = os.path.join(ROOT, 'assets', 'data', 'fashion-mnist-subset')
DEFAULT_SOURCE = '/usr/share/datasets/fashion-mnist'
PREDICTIONS = os.path.join(HERE, 'logs', 'fashion_mnist_cnn.preds.npy')
SUMMARY = os.path.join(ROOT, 'assets', 'models', 'training_summary.json')
IMAGES = 't10k-images-idx3-ubyte.gz'
LABELS = 't10k-labels-idx1-ubyte.gz'


def read_idx(path):
    """An IDX file (gzip or not) as a numpy array of unsigned bytes."""
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack('>HBB', raw[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit('%s: not an unsigned-byte IDX file' % path)
    dims = struct.unpack('>%dI' % ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit('%s: %d bytes of data, header says %s' % (path, data.size, dims))
    return data.reshape(dims)


def idx_bytes(array):
    header = struct.pack('>HBB', 0, 0x08, array.ndim) + struct.pack('>%dI' % array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gzip(path, payload):
    """gzip with a fixed header (mtime 0, no name) so the bytes are reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    data = buffer.getvalue()
    with open(path, 'wb') as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main():
    parser = argparse.ArgumentParser(description='Make assets/data/fashion-mnist-subset/.')
    parser.add_argument('--source', default=DEFAULT_SOURCE, help='folder with the t10k IDX pair')
    parser.add_argument('--per-class', type=int, default=100, help='images kept per class')
    parser.add_argument('--record', action='store_true',
                        help='write the shipped model\'s subset accuracy into training_summary.json')
    args = parser.parse_args()
    source, per_class = args.source, args.per_class
    images = read_idx(os.path.join(source, IMAGES))
    labels = read_idx(os.path.join(source, LABELS))
    if images.shape[0] != labels.shape[0]:
        raise SystemExit('%d images but %d labels' % (images.shape[0], labels.shape[0]))

    chosen = []
    for k in range(10):
        of_class = np.flatnonzero(labels == k)
        if of_class.size < per_class:
            raise SystemExit('class %d has only %d test images' % (k, of_class.size))
        chosen.append(of_class[:per_class])
    order = np.sort(np.concatenate(chosen))  # dataset order among the chosen

    os.makedirs(OUT_DIR, exist_ok=True)
    sub_images, sub_labels = images[order], labels[order]
    for name, array in ((IMAGES, sub_images), (LABELS, sub_labels)):
        digest = write_gzip(os.path.join(OUT_DIR, name), idx_bytes(array))
        print('%s  %s' % (digest, name))
    print('%d images (%d per class) from %s; last source index %d'
          % (order.size, per_class, source, order[-1]))
    print('class counts:', np.bincount(sub_labels, minlength=10).tolist())

    if not os.path.exists(PREDICTIONS):
        if args.record:
            raise SystemExit('%s missing: run tools/train_models.py fashion first' % PREDICTIONS)
        return
    predictions = np.load(PREDICTIONS).astype(np.int64)
    if predictions.shape != labels.shape:
        raise SystemExit('%s: %s predictions for %s labels' % (PREDICTIONS, predictions.shape, labels.shape))
    correct = int((predictions[order] == sub_labels).sum())
    accuracy = correct / order.size
    print('fashion_mnist_cnn.onnx (PyTorch predictions) on the subset: %d / %d = %.4f'
          % (correct, order.size, accuracy))
    if args.record:
        with open(SUMMARY) as f:
            summary = json.load(f)
        fashion = summary['models']['fashion']
        fashion['bundled_subset_accuracy'] = accuracy
        fashion['bundled_subset_images'] = int(order.size)
        with open(SUMMARY, 'w') as f:
            json.dump(summary, f, indent=1)
            f.write('\n')
        print('recorded in', os.path.relpath(SUMMARY, ROOT))


if __name__ == '__main__':
    main()
