#!/usr/bin/env python3
"""Export torchvision ImageNet classifiers to ONNX, as users bring them to cnnslicer.

Runs in Debian's Python (python3-torch, python3-torchvision; onnx and
onnxruntime from PyPI for --check and --suite):

    /usr/bin/python3 tools/export_torchvision.py --model resnet50 --size 224 --out DIR
    /usr/bin/python3 tools/export_torchvision.py --model all --size 64 --mode both --opset 13 --opset 17 --out DIR
    /usr/bin/python3 tools/export_torchvision.py --model resnet18 --output m.onnx
    /usr/bin/python3 tools/export_torchvision.py --suite DIR       # what the engine's test uses

Every file written is printed on stdout, one path a line (nothing else goes to
stdout), so that a script can capture them.

Weights are random (seeded, --seed) and BatchNormalization is calibrated: the
model runs a few batches of random images in training mode, so that its
running statistics are those of real activations and the logits have a sane
scale at any depth (random statistics would make deep nets explode or vanish).

Modes (--mode):
  bn       torch.onnx.export(..., training=TrainingMode.PRESERVE,
           do_constant_folding=False) after model.eval(): BatchNormalization
           stays a node, shape computations stay in the graph (Shape, Gather,
           Div, Concat, ... as PyTorch traces them). This is what cnnslicer's
           README recommends, and the default.
  default  torch.onnx.export's defaults (do_constant_folding=True): the
           exporter folds BatchNormalization into the convolutions.
Both keep a dynamic batch axis ('N') unless --static-batch is given, which
exports with a fixed batch of 1, as `torch.onnx.export(model, x, path)` does.

File names: OUT/<model>-<size>-<mode>-op<opset>[-static].onnx.

Metadata written into each file (read by cnnslicer): cnnslicer.mean and
cnnslicer.std (ImageNet's, 0.485,0.456,0.406 / 0.229,0.224,0.225),
cnnslicer.resize (the shorter side image files are resized to before the
centre crop: 256 at 224x224, as torchvision's evaluation transform) and
cnnslicer.labels (torchvision's 1,000 ImageNet category names, when the model
has 1,000 classes).

Small resolutions: AlexNet and VGG end their features with an adaptive average
pool to 6x6 / 7x7, which the ONNX exporter can only export when the feature
map is a multiple of that size (224x224 input). Below that, the pool is set
to the feature map's own size and the first Linear layer is sized to match;
every other layer is the architecture's own. The other eleven architectures
export unchanged at any size from 32 up.

--check N runs N random images through ONNX Runtime and writes
<file>.input.npy (float32 NCHW) and <file>.logits.npy beside each model.
--preprocessing DIR writes images in the ImageNet layout and torchvision's
Resize(256)+CenterCrop(224) of them (the data test compares its own).
--suite DIR exports all 13 architectures at 64x64, both modes, opsets 13 and
17, plus a statically batched shufflenet, each with --check 3, and writes
DIR/manifest.json listing them; it reuses DIR when the manifest was written by
this same script (its hash is in the manifest).
"""
import argparse
import hashlib
import json
import os
import sys

ARCHITECTURES = [
    'resnet18', 'resnet50', 'vgg11_bn', 'alexnet', 'squeezenet1_1', 'googlenet',
    'mobilenet_v2', 'efficientnet_b0', 'regnet_x_400mf', 'densenet121',
    'mnasnet0_5', 'mobilenet_v3_small', 'shufflenet_v2_x1_0',
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SUITE_SIZE = 64
SUITE_OPSETS = (13, 17)
SUITE_IMAGES = 3


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def script_hash():
    with open(os.path.abspath(__file__), 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def build(name, size, classes, seed):
    """The torchvision architecture `name` with seeded random weights, calibrated BatchNorm, in eval mode."""
    import torch
    import torch.nn as nn
    import torchvision.models as models

    torch.manual_seed(seed)
    kwargs = {'weights': None, 'num_classes': classes}
    if name == 'googlenet':
        # As torchvision's pretrained GoogLeNet: input transform in the graph, no auxiliary heads.
        kwargs.update(aux_logits=False, transform_input=True, init_weights=True)
    model = getattr(models, name)(**kwargs)
    if name in ('alexnet', 'vgg11_bn'):
        adapt_classifier(model, size)
    calibrate(model, size, seed)
    model.eval()
    return model


def adapt_classifier(model, size):
    """Below 224x224, pool AlexNet's/VGG's features at their own size and resize the first Linear to match."""
    import torch
    import torch.nn as nn
    with torch.no_grad():
        fmap = model.features(torch.zeros(1, 3, size, size))
    channels, height, width = fmap.shape[1:]
    target = model.avgpool.output_size
    target = (target, target) if isinstance(target, int) else tuple(target)
    if height % target[0] == 0 and width % target[1] == 0:
        return
    model.avgpool = nn.AdaptiveAvgPool2d((height, width))
    index, first = next((i, m) for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear))
    model.classifier[index] = nn.Linear(channels * height * width, first.out_features)


def calibrate(model, size, seed):
    """Sets BatchNorm statistics from random images (cumulative average), and its affine parameters at random."""
    import torch
    import torch.nn as nn
    generator = torch.Generator().manual_seed(seed + 1)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the calibration batches
            if m.affine:
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
        if norms:
            model.train()
            for _ in range(2):
                model(torch.randn(8, 3, size, size, generator=generator))
    model.eval()


def categories(classes):
    if classes != 1000:
        return None
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        return None
    names = list(_IMAGENET_CATEGORIES)
    # cnnslicer.labels is comma-separated: a comma inside a name would shift every class after it.
    return names if len(names) == 1000 and not any(',' in n for n in names) else None


def file_name(name, size, mode, opset, static):
    return '%s-%d-%s-op%d%s.onnx' % (name, size, mode, opset, '-static' if static else '')


def export(model, path, size, mode, opset, static, classes):
    """Exports to `path` atomically (temporary file, then rename) with cnnslicer's metadata."""
    import onnx
    import torch
    x = torch.randn(1, 3, size, size)
    tmp = path + '.tmp'
    options = dict(opset_version=opset, input_names=['input'], output_names=['logits'])
    if not static:
        options['dynamic_axes'] = {'input': {0: 'N'}, 'logits': {0: 'N'}}
    if mode == 'bn':
        options.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, **options)
    proto = onnx.load(tmp)
    metadata = {'cnnslicer.mean': ','.join('%g' % v for v in IMAGENET_MEAN),
                'cnnslicer.std': ','.join('%g' % v for v in IMAGENET_STD),
                # torchvision's evaluation transform: Resize(256) then CenterCrop(224), scaled to other sizes.
                'cnnslicer.resize': str(size * 256 // 224)}
    labels = categories(classes)
    if labels:
        metadata['cnnslicer.labels'] = ','.join(labels)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, tmp)
    os.replace(tmp, path)


def check(path, size, images, seed):
    """Writes random inputs and ONNX Runtime's logits beside the model; returns the .npy paths."""
    import numpy as np
    import onnxruntime as ort
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((images, 3, size, size)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    if any(isinstance(d, int) for d in session.get_inputs()[0].shape[:1]):
        logits = np.concatenate([session.run(None, {'input': x[i:i + 1]})[0] for i in range(images)])
    else:
        logits = session.run(None, {'input': x})[0]
    written = []
    for suffix, array in (('.input.npy', x), ('.logits.npy', logits.astype(np.float32))):
        target = path + suffix
        with open(target + '.tmp', 'wb') as f:
            np.save(f, array)
        os.replace(target + '.tmp', target)
        written.append(target)
    return written


def run_exports(names, sizes, modes, opsets, out, classes, seed, static, check_images, output=None):
    import torch
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    written = []
    for name in names:
        for size in sizes:
            model = build(name, size, classes, seed)
            for mode in modes:
                for opset in opsets:
                    path = output or os.path.join(out, file_name(name, size, mode, opset, static))
                    log('exporting %s at %dx%d, %s, opset %d%s' % (name, size, size, mode, opset,
                                                                  ', static batch' if static else ''))
                    export(model, path, size, mode, opset, static, classes)
                    print(path, flush=True)
                    entry = {'file': os.path.basename(path), 'model': name, 'size': size, 'mode': mode,
                             'opset': opset, 'static_batch': static}
                    if check_images:
                        for extra in check(path, size, check_images, seed):
                            print(extra, flush=True)
                        entry['images'] = check_images
                    written.append(entry)
    return written


def suite(out):
    """The test suite's exports, reused while this script is unchanged."""
    manifest_path = os.path.join(out, 'manifest.json')
    digest = script_hash()
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get('script') == digest and all(
                os.path.exists(os.path.join(out, e['file'] + '.logits.npy')) for e in manifest['models']):
            log('reusing %s (script unchanged)' % out)
            return
    except (OSError, ValueError, KeyError):
        pass
    entries = run_exports(ARCHITECTURES, [SUITE_SIZE], ['bn', 'default'], list(SUITE_OPSETS), out,
                          1000, 0, False, SUITE_IMAGES)
    # A static batch of 1 (the exporter's default): Reshape targets become constants with the batch in them.
    entries += run_exports(['shufflenet_v2_x1_0'], [SUITE_SIZE], ['default'], [13], out, 1000, 0, True, SUITE_IMAGES)
    with open(manifest_path + '.tmp', 'w') as f:
        json.dump({'script': digest, 'models': entries}, f, indent=1)
    os.replace(manifest_path + '.tmp', manifest_path)
    print(manifest_path, flush=True)


def preprocessing_fixture(out):
    """Images in the ImageNet layout and torchvision's evaluation transform of them.

    Writes OUT/images/<synset>/*.jpg|png (seeded, smooth content with sharp edges
    so that antialiasing matters), OUT/decoded/<k>.npy (PIL's RGB decode of the
    k-th image, uint8 CHW) and OUT/transformed.npy: Resize(256) then
    CenterCrop(224) on the PIL images (bilinear with antialiasing), uint8 NCHW,
    in sorted folder and file order. Reused while this script is unchanged.
    """
    import numpy as np
    from PIL import Image
    import torchvision.transforms as T
    digest = script_hash()
    stamp = os.path.join(out, 'preprocessing.json')
    try:
        with open(stamp) as f:
            if json.load(f).get('script') == digest:
                log('reusing %s (script unchanged)' % out)
                return
    except (OSError, ValueError):
        pass
    rng = np.random.default_rng(3)
    sizes = {'n01440764': [(300, 250), (250, 300), (333, 257)], 'n01443537': [(400, 300), (224, 224), (180, 500)]}
    transform = T.Compose([T.Resize(256), T.CenterCrop(224)])
    os.makedirs(os.path.join(out, 'decoded'), exist_ok=True)
    transformed = []
    k = 0
    for synset in sorted(sizes):
        folder = os.path.join(out, 'images', synset)
        os.makedirs(folder, exist_ok=True)
        for i, (w, h) in enumerate(sizes[synset]):
            yy, xx = np.mgrid[0:h, 0:w]
            smooth = np.stack([128 + 100 * np.sin(xx / (7 + 3 * c) + yy / (11 + c)) for c in range(3)], axis=-1)
            stripes = ((xx // 3 + yy // 5) % 2) * 60
            noise = rng.normal(0, 12, (h, w, 3))
            pixels = np.clip(smooth + stripes[..., None] + noise, 0, 255).astype(np.uint8)
            name = os.path.join(folder, 'img%d.%s' % (i, 'png' if i == 2 else 'jpg'))
            Image.fromarray(pixels).save(name, quality=90) if name.endswith('jpg') else Image.fromarray(pixels).save(name)
            image = Image.open(name).convert('RGB')
            np.save(os.path.join(out, 'decoded', '%d.npy' % k), np.asarray(image).transpose(2, 0, 1).copy())
            transformed.append(np.asarray(transform(image)).transpose(2, 0, 1))
            k += 1
    np.save(os.path.join(out, 'transformed.npy'), np.stack(transformed))
    with open(stamp, 'w') as f:
        json.dump({'script': digest, 'images': k}, f)
    print(stamp, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--model', action='append', help="architecture (repeatable), or 'all': " + ', '.join(ARCHITECTURES))
    parser.add_argument('--size', type=int, action='append', help='input height and width (repeatable; default 224)')
    parser.add_argument('--mode', choices=['bn', 'default', 'both'], default='bn')
    parser.add_argument('--opset', type=int, action='append', help='ONNX opset, 13 to 17 (repeatable; default 13)')
    parser.add_argument('--classes', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--static-batch', action='store_true', help='fixed batch of 1 instead of a dynamic batch axis')
    parser.add_argument('--check', type=int, default=0, metavar='N',
                        help="write N random inputs and ONNX Runtime's logits beside each model")
    parser.add_argument('--out', default='.', help='output directory')
    parser.add_argument('--output', help='output file, when exactly one model is exported')
    parser.add_argument('--suite', metavar='DIR', help="the engine test's exports (see above)")
    parser.add_argument('--preprocessing', metavar='DIR',
                        help="images and torchvision's Resize(256)+CenterCrop(224) of them, for the data test")
    args = parser.parse_args()
    if args.suite:
        suite(args.suite)
        return
    if args.preprocessing:
        preprocessing_fixture(args.preprocessing)
        return
    names = args.model or parser.error('--model is required (or --suite)')
    if 'all' in names:
        names = ARCHITECTURES
    unknown = [n for n in names if n not in ARCHITECTURES]
    if unknown:
        parser.error('unknown architecture %s (known: %s)' % (', '.join(unknown), ', '.join(ARCHITECTURES)))
    sizes = args.size or [224]
    opsets = args.opset or [13]
    if any(o < 13 or o > 17 for o in opsets):
        parser.error('opsets 13 to 17 are supported')
    if any(s < 32 for s in sizes):
        parser.error('sizes below 32 do not fit these architectures')
    modes = ['bn', 'default'] if args.mode == 'both' else [args.mode]
    if args.output and len(names) * len(sizes) * len(modes) * len(opsets) != 1:
        parser.error('--output names one file: give one model, size, mode and opset')
    out = os.path.dirname(os.path.abspath(args.output)) if args.output else args.out
    run_exports(names, sizes, modes, opsets, out, args.classes, args.seed, args.static_batch, args.check,
                output=args.output)


if __name__ == '__main__':
    main()
