#!/usr/bin/env python3
"""Train and export the models shipped in assets/models/.

HOW TO RUN

    /usr/bin/python3 tools/train_models.py            # everything (~1 h on one thread)
    /usr/bin/python3 tools/train_models.py fashion    # or: mnist, cifar (any subset)
    python3 tools/train_models.py --post              # step 2 only (see below)

Needs Debian's python3-torch (and numpy) for training, the datasets
(Debian's dataset-fashion-mnist at /usr/share/datasets/fashion-mnist/,
MNIST and the CIFAR-10 subset under /work/shared/datasets/ or $CNNSLICER_DATA),
and, for step 2, a second Python with the pip packages `onnx` and
`onnxruntime` (env CNNSLICER_ONNX_PYTHON, else `python3` on PATH).

Step 1 (torch, one thread, seeded, deterministic algorithms) trains each
model, logs per-epoch loss/accuracy to tools/logs/<model>.log, exports ONNX
with opset 13, training=PRESERVE (after model.eval(): BatchNormalization
kept, inference mode), do_constant_folding=False, dynamic batch axis, input
'input', output 'logits', writes the PyTorch test predictions to
tools/logs/<file>.preds.npy and assets/models/training_summary.json.
Step 2 (started automatically as a subprocess after each model) adds the
metadata_props cnnslicer.mean / cnnslicer.std / cnnslicer.labels with the
onnx package and runs every exported file with onnxruntime on the full test
set; the ORT accuracy and the number of predictions that differ from
PyTorch's are written into training_summary.json.

Preprocessing (as in SPEC §1 and the metadata): x = u/255, (x - mean_c)/std_c.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..'))
MODELS_DIR = os.path.join(ROOT, 'assets', 'models')
LOG_DIR = os.path.join(HERE, 'logs')
SUMMARY = os.path.join(MODELS_DIR, 'training_summary.json')

DATA_ROOTS = [os.environ.get('CNNSLICER_DATA', ''), '/work/shared/datasets']
FASHION_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                  'Shirt', 'Sneaker', 'Bag', 'Ankle boot']


# ----------------------------------------------------------------------------
# Data (numpy only: used by both steps)
# ----------------------------------------------------------------------------
def find_dir(name):
    for r in DATA_ROOTS:
        if r and os.path.isdir(os.path.join(r, name)):
            return os.path.join(r, name)
    raise SystemExit('dataset %s not found under %s' % (name, DATA_ROOTS))


def read_idx(path):
    op = gzip.open if path.endswith('.gz') else open
    with op(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    assert magic >> 8 == 0x08, 'only unsigned byte IDX files'
    ndim = magic & 0xff
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_idx_set(folder):
    def pair(prefix):
        x = read_idx(os.path.join(folder, prefix + '-images-idx3-ubyte.gz'))
        y = read_idx(os.path.join(folder, prefix + '-labels-idx1-ubyte.gz'))
        return x[:, None, :, :], y.astype(np.int64)
    return pair('train'), pair('t10k')


def load_cifar(folder):
    def read(files):
        raw = b''.join(open(os.path.join(folder, f), 'rb').read() for f in files)
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
        return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)
    train = read(['data_batch_%d.bin' % i for i in range(1, 6)])
    test = read(['test_batch.bin'])
    with open(os.path.join(folder, 'batches.meta.txt')) as f:
        labels = [l.strip() for l in f if l.strip()]
    return train, test, labels


def dataset(kind):
    """-> (train (u8 NCHW, labels), test, labels, mean list, std list)"""
    if kind == 'fashion':
        train, test = load_idx_set(FASHION_DIR)
        labels = FASHION_LABELS
    elif kind == 'mnist':
        train, test = load_idx_set(find_dir('mnist'))
        labels = [str(i) for i in range(10)]
    else:
        train, test, labels = load_cifar(find_dir('cifar-10-partial'))
    x = train[0].astype(np.float64) / 255.0
    mean = [round(float(x[:, c].mean()), 4) for c in range(x.shape[1])]
    std = [round(float(x[:, c].std()), 4) for c in range(x.shape[1])]
    return train, test, labels, mean, std


def normalise(u8, mean, std):
    x = u8.astype(np.float32) / np.float32(255.0)
    m = np.array(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.array(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


# ----------------------------------------------------------------------------
# Model definitions and training (torch)
# ----------------------------------------------------------------------------
def conv_block(nn, cin, cout, pool=True):
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


def build(kind):
    import torch.nn as nn
    if kind in ('fashion', 'mnist'):
        # 28 -> 14 -> 7 -> 3
        return nn.Sequential(
            *conv_block(nn, 1, 32), *conv_block(nn, 32, 64), *conv_block(nn, 64, 128),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(128 * 3 * 3, 10))
    # CIFAR VGG-style: 32 -> 16 -> 8 -> 4
    return nn.Sequential(
        *conv_block(nn, 3, 32, pool=False), *conv_block(nn, 32, 32),
        *conv_block(nn, 32, 64, pool=False), *conv_block(nn, 64, 64),
        *conv_block(nn, 64, 128, pool=False), *conv_block(nn, 128, 128),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 4 * 4, 10))


CONFIG = {
    # name, epochs, batch, max lr, weight decay, crop padding, flip
    'fashion': dict(file='fashion_mnist_cnn.onnx', epochs=10, batch=128, lr=3e-3, wd=1e-4,
                    pad=2, flip=True, series='fashion_mnist_cnn_epochs'),
    'mnist': dict(file='mnist_cnn.onnx', epochs=8, batch=128, lr=3e-3, wd=1e-4,
                  pad=2, flip=False, series=None),
    'cifar': dict(file='cifar10_vgg.onnx', epochs=80, batch=64, lr=3e-3, wd=5e-4,
                  pad=4, flip=True, series=None),
}


def augment(torch, xb, pad, flip, gen):
    n, c, h, w = xb.shape
    if pad:
        # pad with the normalised value of a black pixel (= per-channel minimum)
        fill = xb.amin(dim=(0, 2, 3), keepdim=True)
        big = fill.expand(n, c, h + 2 * pad, w + 2 * pad).clone()
        big[:, :, pad:pad + h, pad:pad + w] = xb
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        xb = torch.stack([big[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])
    if flip:
        m = torch.rand(n, generator=gen) < 0.5
        xb = torch.where(m[:, None, None, None], xb.flip(3), xb)
    return xb


def evaluate(torch, model, x, y, batch=1000):
    model.eval()
    preds = []
    loss = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            loss += float(torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction='sum'))
            preds.append(out.argmax(1))
    p = torch.cat(preds)
    return int((p == y).sum()) / len(y), loss / len(x), p.numpy().astype(np.int8)


def export(torch, model, chw, path):
    model.eval()
    x = torch.zeros(1, *chw)
    torch.onnx.export(model, x, path, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})


def load_summary():
    if os.path.exists(SUMMARY):
        with open(SUMMARY) as f:
            return json.load(f)
    return {'models': {}}


def save_summary(s):
    with open(SUMMARY, 'w') as f:
        json.dump(s, f, indent=1)
        f.write('\n')


def train(kind, max_batches=None):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    cfg = CONFIG[kind]
    (xtr, ytr), (xte, yte), labels, mean, std = dataset(kind)
    xtr = torch.from_numpy(normalise(xtr, mean, std))
    xte = torch.from_numpy(normalise(xte, mean, std))
    ytr = torch.from_numpy(ytr)
    yte = torch.from_numpy(yte)
    chw = tuple(xtr.shape[1:])
    model = build(kind)
    nparams = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(1)
    steps = (len(xtr) + cfg['batch'] - 1) // cfg['batch']
    opt = torch.optim.AdamW(model.parameters(), lr=cfg['lr'], weight_decay=cfg['wd'])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg['lr'], epochs=cfg['epochs'],
                                                steps_per_epoch=steps, pct_start=0.25)
    os.makedirs(LOG_DIR, exist_ok=True)
    os.makedirs(MODELS_DIR, exist_ok=True)
    log = open(os.path.join(LOG_DIR, cfg['file'].replace('.onnx', '.log')), 'w')

    def say(msg):
        line = '%s %s' % (time.strftime('%H:%M:%S'), msg)
        print(line, flush=True)
        log.write(line + '\n')
        log.flush()

    say('%s: %d train / %d test images %s, mean %s std %s, %d parameters, %d epochs, '
        'AdamW lr %g wd %g OneCycle, batch %d, aug pad %d flip %s'
        % (kind, len(xtr), len(xte), chw, mean, std, nparams, cfg['epochs'], cfg['lr'],
           cfg['wd'], cfg['batch'], cfg['pad'], cfg['flip']))

    series = []
    files = []
    if cfg['series'] and max_batches is None:
        sdir = os.path.join(MODELS_DIR, cfg['series'])
        os.makedirs(sdir, exist_ok=True)
        acc, loss, preds = evaluate(torch, model, xte, yte)
        p = os.path.join(sdir, 'epoch_00.onnx')
        export(torch, model, chw, p)
        np.save(os.path.join(LOG_DIR, cfg['series'] + '_epoch_00.preds.npy'), preds)
        series.append({'epoch': 0, 'file': os.path.relpath(p, MODELS_DIR),
                       'test_accuracy': acc, 'test_loss': loss})
        files.append(p)
        say('epoch 0 (untrained): test loss %.4f acc %.4f' % (loss, acc))

    t_start = time.time()
    for epoch in range(1, cfg['epochs'] + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        tot, correct, seen = 0.0, 0, 0
        for b in range(steps):
            if max_batches is not None and b >= max_batches:
                break
            idx = perm[b * cfg['batch']:(b + 1) * cfg['batch']]
            xb = augment(torch, xtr[idx], cfg['pad'], cfg['flip'], gen)
            yb = ytr[idx]
            out = model(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            seen += len(idx)
        dt = time.time() - t0
        if max_batches is not None:
            say('timing: %d batches in %.1fs -> %.1fs per epoch' % (max_batches, dt, dt * steps / max_batches))
            return
        acc, tloss, preds = evaluate(torch, model, xte, yte)
        say('epoch %d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.0fs'
            % (epoch, tot / seen, correct / seen, tloss, acc, dt))
        if cfg['series']:
            p = os.path.join(MODELS_DIR, cfg['series'], 'epoch_%02d.onnx' % epoch)
            export(torch, model, chw, p)
            np.save(os.path.join(LOG_DIR, cfg['series'] + '_epoch_%02d.preds.npy' % epoch), preds)
            series.append({'epoch': epoch, 'file': os.path.relpath(p, MODELS_DIR),
                           'test_accuracy': acc, 'test_loss': tloss})
            files.append(p)

    final = os.path.join(MODELS_DIR, cfg['file'])
    export(torch, model, chw, final)
    np.save(os.path.join(LOG_DIR, cfg['file'].replace('.onnx', '.preds.npy')), preds)
    files.append(final)
    say('final test accuracy %.4f (%d / %d), %.1f min' % (acc, int(round(acc * len(xte))), len(xte),
                                                           (time.time() - t_start) / 60))
    log.close()

    s = load_summary()
    s['models'][kind] = {
        'file': cfg['file'], 'series': cfg['series'], 'input_shape': list(chw),
        'train_images': len(xtr), 'test_images': len(xte), 'parameters': nparams,
        'epochs': cfg['epochs'], 'batch': cfg['batch'],
        'optimiser': 'AdamW(lr=%g, weight_decay=%g), OneCycleLR(pct_start=0.25)' % (cfg['lr'], cfg['wd']),
        'augmentation': {'random_crop_padding': cfg['pad'], 'horizontal_flip': cfg['flip']},
        'mean': mean, 'std': std, 'labels': labels,
        'test_accuracy_torch': acc, 'test_loss_torch': tloss,
        'epochs_series': series,
    }
    save_summary(s)
    post(kind)


def post(kind):
    py = os.environ.get('CNNSLICER_ONNX_PYTHON')
    if not py:
        for cand in [shutil.which('python3'), os.path.expanduser('~/.pyenv/shims/python3')]:
            if cand and os.path.realpath(cand) != os.path.realpath(sys.executable):
                py = cand
                break
    if not py:
        print('WARNING: no python with onnx/onnxruntime; run `python3 %s --post` later' % __file__)
        return
    subprocess.run([py, os.path.abspath(__file__), '--post', kind], check=True)


# ----------------------------------------------------------------------------
# Step 2: metadata + onnxruntime verification (pip python with onnx, onnxruntime)
# ----------------------------------------------------------------------------
def inline_identity_initializers(model):
    """torch.onnx.export deduplicates equal initializers (e.g. the all-ones BN weight
    and all-ones running_var of an untrained model) and inserts Identity nodes; put
    the copies back so that every checkpoint of a series has the same node list."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    outs = {o.name for o in g.output}
    keep = []
    for n in g.node:
        if n.op_type == 'Identity' and n.input[0] in inits and n.output[0] not in outs:
            t = g.initializer.add()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
        else:
            keep.append(n)
    if len(keep) != len(g.node):
        del g.node[:]
        g.node.extend(keep)


def onnx_step(kinds):
    import onnx
    import onnxruntime as ort
    s = load_summary()
    for kind in kinds:
        if kind not in s['models']:
            continue
        m = s['models'][kind]
        (_, _), (xte, yte), labels, mean, std = dataset(kind)
        x = normalise(xte, mean, std)
        props = {'cnnslicer.mean': ','.join('%g' % v for v in m['mean']),
                 'cnnslicer.std': ','.join('%g' % v for v in m['std']),
                 'cnnslicer.labels': ','.join(m['labels'])}
        targets = [(e['file'], os.path.join(LOG_DIR, m['series'] + '_epoch_%02d.preds.npy' % e['epoch']), e)
                   for e in m['epochs_series']]
        targets.append((m['file'], os.path.join(LOG_DIR, m['file'].replace('.onnx', '.preds.npy')), m))
        for rel, pred_path, entry in targets:
            path = os.path.join(MODELS_DIR, rel)
            model = onnx.load(path)
            inline_identity_initializers(model)
            del model.metadata_props[:]
            for k, v in props.items():
                p = model.metadata_props.add()
                p.key, p.value = k, v
            onnx.checker.check_model(model)
            ops = sorted({n.op_type for n in model.graph.node})
            bn = [n for n in model.graph.node if n.op_type == 'BatchNormalization']
            assert all(len(n.output) == 1 for n in bn), 'BatchNormalization not in inference mode'
            onnx.save(model, path)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
            preds = np.concatenate([sess.run(['logits'], {'input': x[i:i + 1000]})[0].argmax(1)
                                    for i in range(0, len(x), 1000)])
            acc = float((preds == yte).mean())
            torch_preds = np.load(pred_path).astype(np.int64)
            ndiff = int((preds != torch_preds).sum())
            entry['test_accuracy_onnxruntime'] = acc
            entry['onnxruntime_prediction_differences'] = ndiff
            entry['size_bytes'] = os.path.getsize(path)
            entry['ops'] = ops
            entry['batchnorm_nodes'] = len(bn)
            torch_acc = entry.get('test_accuracy_torch', entry.get('test_accuracy'))
            print('[ort] %s: accuracy %.4f (torch %.4f), %d prediction(s) differ, %d bytes, ops %s'
                  % (rel, acc, torch_acc, ndiff, entry['size_bytes'], ' '.join(ops)), flush=True)
        s['models'][kind] = m
    save_summary(s)


if __name__ == '__main__':
    args = sys.argv[1:]
    if args and args[0] == '--post':
        onnx_step(args[1:] or ['fashion', 'mnist', 'cifar'])
    elif args and args[0] == '--time':
        for k in args[1:] or ['fashion', 'mnist', 'cifar']:
            train(k, max_batches=int(os.environ.get('TIME_BATCHES', '20')))
    else:
        for k in args or ['fashion', 'mnist', 'cifar']:
            train(k)
