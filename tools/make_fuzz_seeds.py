#!/usr/bin/env python3
"""Writes the seed inputs of the command-line tests and the fuzz campaign
(Tests/CLITests/Seeds), each in its real on-disk format, as the tools people
use write them: numpy for .npy and the CIFAR python batches (pickle protocol 2,
as in cifar-10-python.tar.gz), Pillow for PNG and JPEG, Python's gzip for .gz.
The pixels are the first 16 images of the bundled Fashion-MNIST subset.

    /usr/bin/python3 tools/make_fuzz_seeds.py

Small on purpose: every fuzz case runs the real binary on them.
"""
import gzip
import os
import pickle
import shutil

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'Tests', 'CLITests', 'Seeds')
COUNT = 16


def idx_images(images):
    n, h, w = images.shape
    return bytes([0, 0, 8, 3]) + n.to_bytes(4, 'big') + h.to_bytes(4, 'big') + w.to_bytes(4, 'big') + images.tobytes()


def idx_labels(labels):
    return bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, 'big') + labels.astype(np.uint8).tobytes()


def main():
    subset = os.path.join(ROOT, 'assets', 'data', 'fashion-mnist-subset')
    with gzip.open(os.path.join(subset, 't10k-images-idx3-ubyte.gz')) as f:
        raw = f.read()
    images = np.frombuffer(raw[16:16 + COUNT * 784], dtype=np.uint8).reshape(COUNT, 28, 28)
    with gzip.open(os.path.join(subset, 't10k-labels-idx1-ubyte.gz')) as f:
        labels = np.frombuffer(f.read()[8:8 + COUNT], dtype=np.uint8)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']

    # IDX, raw and gzip.
    for folder, opener, suffix in [('idx', open, ''), ('idx-gz', lambda p, m: gzip.GzipFile(p, m, mtime=0), '.gz')]:
        os.makedirs(os.path.join(OUT, folder))
        with opener(os.path.join(OUT, folder, 't10k-images-idx3-ubyte' + suffix), 'wb') as f:
            f.write(idx_images(images))
        with opener(os.path.join(OUT, folder, 't10k-labels-idx1-ubyte' + suffix), 'wb') as f:
            f.write(idx_labels(labels))

    # CIFAR-10 layouts: 32×32 RGB made from the 28×28 grey images (padded, tinted per channel).
    rgb = np.zeros((COUNT, 3, 32, 32), dtype=np.uint8)
    for c, scale in enumerate([1.0, 0.8, 0.6]):
        rgb[:, c, 2:30, 2:30] = (images * scale).astype(np.uint8)
    os.makedirs(os.path.join(OUT, 'cifar-bin'))
    with open(os.path.join(OUT, 'cifar-bin', 'test_batch.bin'), 'wb') as f:
        for i in range(COUNT):
            f.write(bytes([int(labels[i])]) + rgb[i].tobytes())
    with open(os.path.join(OUT, 'cifar-bin', 'batches.meta.txt'), 'w') as f:
        f.write('\n'.join(n.replace('/', '_') for n in names) + '\n')
    py = os.path.join(OUT, 'cifar-py', 'cifar-10-batches-py')
    os.makedirs(py)
    batch = {b'batch_label': b'testing batch 1 of 1', b'labels': [int(x) for x in labels],
             b'data': rgb.reshape(COUNT, 3072), b'filenames': [b'image_%d.png' % i for i in range(COUNT)]}
    with open(os.path.join(py, 'test_batch'), 'wb') as f:
        pickle.dump(batch, f, protocol=2)
    with open(os.path.join(py, 'batches.meta'), 'wb') as f:
        pickle.dump({b'num_cases_per_batch': COUNT, b'label_names': [n.encode() for n in names], b'num_vis': 3072}, f,
                    protocol=2)

    # An image folder: two classes, PNG and JPEG.
    for i in range(4):
        cls = ['0', '1'][i % 2]
        os.makedirs(os.path.join(OUT, 'images', cls), exist_ok=True)
        image = Image.fromarray(images[i], mode='L')
        if i < 2:
            image.save(os.path.join(OUT, 'images', cls, 'image_%d.png' % i))
        else:
            image.convert('RGB').save(os.path.join(OUT, 'images', cls, 'image_%d.jpg' % i), quality=90)

    # A float32 NCHW batch for `infer`.
    np.save(os.path.join(OUT, 'input.npy'), (images[:4].reshape(4, 1, 28, 28) / 255.0).astype(np.float32))


if __name__ == '__main__':
    main()
