#!/usr/bin/env python3
"""Write an image folder in the ImageNet layout, for trying cnnslicer on 1,000-class models.

HOW TO RUN

    /usr/bin/python3 tools/make_imagenet_folder.py --out DIR [--classes 1000] [--per-class 1]
        [--source ../shared/datasets/cifar-10-partial] [--size 64]

ImageNet itself cannot be fetched here (no network), so the pictures are the
real CIFAR-10 images of --source (binary batches, 3,073 bytes a record), taken
in file order (test_batch.bin, then data_batch_1..5.bin), upscaled to --size
pixels square (bicubic) and saved as JPEG (quality 90) in

    DIR/<class name>/<class name>_<k>.JPEG

one subfolder per class, named by torchvision's 1,000 ImageNet category names
(torchvision.models._meta._IMAGENET_CATEGORIES, the names the exports of
tools/export_torchvision.py carry as cnnslicer.labels). The first --classes
categories get --per-class images each, so with the defaults every one of the
1,000 outputs of a ResNet-50 has a class in the data, as on ImageNet's
validation set. The class of a picture is its folder, not what it shows: the
labels are arbitrary, which is fine for random-weight exports and for the
scale of the views, and says nothing about accuracy.

Beside the folders it writes DIR/imagenet_class_index.json in torchvision's
layout ({"0": ["<folder>", "<name>"], ...}), which cnnslicer finds by itself
(see README, --class-index).

Deterministic: the same arguments give the same files. Needs numpy and PIL
(Debian's python3-numpy, python3-pil).
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image


def categories():
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        sys.exit("make_imagenet_folder.py: needs torchvision (apt-get install python3-torchvision) for the class names")
    return list(_IMAGENET_CATEGORIES)


def cifar_images(source, needed):
    names = ["test_batch.bin"] + [f"data_batch_{i}.bin" for i in range(1, 6)]
    out = []
    for name in names:
        path = os.path.join(source, name)
        if not os.path.exists(path):
            continue
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073:
            sys.exit(f"{path}: {raw.size} bytes is not a whole number of 3,073-byte CIFAR-10 records")
        records = raw.reshape(-1, 3073)
        for r in records:
            out.append(r[1:].reshape(3, 32, 32).transpose(1, 2, 0))
            if len(out) == needed:
                return out
    sys.exit(f"{source}: only {len(out)} CIFAR-10 images, {needed} needed (lower --classes or --per-class)")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--per-class", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--source", default=os.path.join(here, "..", "..", "shared", "datasets", "cifar-10-partial"))
    a = p.parse_args()
    cats = categories()
    if not 1 <= a.classes <= len(cats):
        sys.exit(f"--classes must be 1...{len(cats)}")
    if a.per_class < 1 or a.size < 8:
        sys.exit("--per-class must be at least 1 and --size at least 8")
    images = cifar_images(a.source, a.classes * a.per_class)
    os.makedirs(a.out, exist_ok=True)
    index = {}
    n = 0
    for c in range(a.classes):
        folder = cats[c]
        index[str(c)] = [folder, cats[c]]
        d = os.path.join(a.out, folder)
        os.makedirs(d, exist_ok=True)
        for k in range(a.per_class):
            img = Image.fromarray(images[n]).resize((a.size, a.size), Image.BICUBIC)
            img.save(os.path.join(d, f"{folder}_{k}.JPEG"), quality=90)
            n += 1
    tmp = os.path.join(a.out, "imagenet_class_index.json.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=0)
    os.replace(tmp, os.path.join(a.out, "imagenet_class_index.json"))
    print(f"{a.out}: {n} images in {a.classes} class folders, {a.size}x{a.size} JPEG, imagenet_class_index.json")


if __name__ == "__main__":
    main()
