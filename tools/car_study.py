#!/usr/bin/env python3
"""Numbers of docs/car-study.md: CAR pruning of the CIFAR-10 model's first layer.

Reads the JSON written by `cnnslicer car` (cnnslicer.car.v1) and
`cnnslicer analyze` (cnnslicer.analysis.v1) for the same model, images and
tap, plus the first convolution's weights from the ONNX file, and prints the
markdown tables used in the study. Needs numpy and onnx only.

    python3 tools/car_study.py --car car.json --analysis analysis.json \
        [--analysis-channel analysis_channel.json] \
        [--halves car_halfA.json car_halfB.json] \
        [--data /work/shared/datasets/cifar-10-partial] \
        [--filters-png docs/images/car-study-filters.png]

    python3 tools/car_study.py --split-half DATA OUTDIR
        writes OUTDIR/test_batch.bin with the second half of DATA's test
        batch (records 509..1016) for a split-half reliability run.

Definitions (see the study for the reasoning):
  * Weights are converted from normalised input units to pixel units
    (x = (u/255 - mean_c)/std_c, so a weight w on channel c acts on the pixel
    value u/255 as w/std_c); all weight indices use these pixel-space weights
    unless noted.
  * Each filter W (3 x k x k) is split orthogonally into four parts by two
    commuting projections: mean over the input channels (achromatic) and mean
    over the spatial positions (DC). Colour-selectivity index
    CSI = ||W - mean_c W||^2 / ||W||^2 (0 = grey filter; 1 = channels sum to
    zero, e.g. red minus green). Spatial index SSI = ||W - mean_xy W||^2 /
    ||W||^2 (0 = constant kernel, a "colour blob" if chromatic). For an
    isotropic random filter E[CSI] = 2/3 and E[SSI] = (k^2-1)/k^2.
  * Response CSI (with --data): the same split applied to what the filter sees,
    var(chromatic part * x) / (var(achromatic part * x) + var(chromatic part * x))
    over all 3x3 patches of the test images (natural images are mostly
    luminance, so this is lower than the weight CSI).
"""

import argparse
import json
import math
import os
import struct
import sys
import zlib

import numpy as np


# ---------------------------------------------------------------- statistics

def ranks(x):
    """Average ranks (1-based), ties share their mean rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra * rb).sum() / math.sqrt((ra * ra).sum() * (rb * rb).sum()))


def spearman_perm_p(a, b, n=20000, seed=0):
    """Two-sided permutation p-value of Spearman's rho (ties kept)."""
    rng = np.random.default_rng(seed)
    rho = spearman(a, b)
    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean()
    rb = rb - rb.mean()
    den = math.sqrt((ra * ra).sum() * (rb * rb).sum())
    perms = np.argsort(rng.random((n, len(rb))), axis=1)
    sims = (ra[None, :] * rb[perms]).sum(axis=1) / den
    return rho, float((np.abs(sims) >= abs(rho) - 1e-12).mean())


def hypergeom_upper(x, total, marked, drawn):
    """P(X >= x) for X ~ Hypergeometric: `drawn` of `total`, `marked` special."""
    den = math.comb(total, drawn)
    return sum(math.comb(marked, i) * math.comb(total - marked, drawn - i)
               for i in range(x, min(marked, drawn) + 1)) / den


def perm_mean_diff_p(values, first, n=20000, seed=0):
    """Two-sided permutation p-value of mean(values[first]) - mean(rest)."""
    rng = np.random.default_rng(seed)
    v = np.asarray(values, float)
    k = len(first)
    mask = np.zeros(len(v), bool)
    mask[list(first)] = True
    obs = v[mask].mean() - v[~mask].mean()
    perms = np.argsort(rng.random((n, len(v))), axis=1)[:, :k]
    sel = v[perms].mean(axis=1)
    rest = (v.sum() - sel * k) / (len(v) - k)
    return float(obs), float((np.abs(sel - rest) >= abs(obs) - 1e-12).mean())


# ---------------------------------------------------------------- model

def first_conv(model_path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(model_path)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in g.initializer}
    meta = {p.key: p.value for p in m.metadata_props}
    graph_inputs = {i.name for i in g.input} - set(inits)
    conv = next(n for n in g.node if n.op_type == "Conv" and n.input[0] in graph_inputs)
    W = inits[conv.input[1]]
    bn = next((n for n in g.node if n.op_type == "BatchNormalization"
               and n.input[0] == conv.output[0]), None)
    scale = np.ones(W.shape[0])
    if bn is not None:
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, var = inits[bn.input[1]], inits[bn.input[4]]
        scale = gamma / np.sqrt(var + eps)
    mean = np.array([float(v) for v in meta.get("cnnslicer.mean", "0").split(",")])
    std = np.array([float(v) for v in meta.get("cnnslicer.std", "1").split(",")])
    return conv.name, W, scale, mean, std


def decompose(W):
    """Energy fractions of the four orthogonal parts of each filter.

    Returns dict of arrays [C]: ach_dc, ach_sp, chr_dc, chr_sp (sum 1)."""
    A = W.mean(axis=1, keepdims=True) * np.ones_like(W)         # achromatic
    D = W.mean(axis=(2, 3), keepdims=True) * np.ones_like(W)    # spatial DC
    AD = W.mean(axis=(1, 2, 3), keepdims=True) * np.ones_like(W)
    parts = {
        "ach_dc": AD,
        "ach_sp": A - AD,
        "chr_dc": D - AD,
        "chr_sp": W - A - D + AD,
    }
    tot = (W ** 2).sum(axis=(1, 2, 3))
    return {k: (v ** 2).sum(axis=(1, 2, 3)) / tot for k, v in parts.items()}


def read_cifar_test(folder):
    raw = np.fromfile(os.path.join(folder, "test_batch.bin"), dtype=np.uint8)
    raw = raw.reshape(-1, 3073)
    return raw[:, 0].astype(int), raw[:, 1:].reshape(-1, 3, 32, 32)


def response_csi(Wp, images):
    """var(chromatic response) / (var(achromatic) + var(chromatic)) per filter,
    over all valid 3x3 patches, pixel values in [0, 1]."""
    x = images.astype(np.float64) / 255.0
    n, c, h, w = x.shape
    k = Wp.shape[2]
    cols = np.stack([x[:, :, i:h - k + 1 + i, j:w - k + 1 + j]
                     for i in range(k) for j in range(k)], axis=2)  # n,c,kk,h',w'
    cols = cols.transpose(0, 3, 4, 1, 2).reshape(-1, c * k * k)
    A = (Wp.mean(axis=1, keepdims=True) * np.ones_like(Wp)).reshape(len(Wp), -1)
    C = Wp.reshape(len(Wp), -1) - A
    ra = cols @ A.T
    rc = cols @ C.T
    va, vc = ra.var(axis=0), rc.var(axis=0)
    return vc / (va + vc)



# ---------------------------------------------------------------- held-out curves

class MaskedModel:
    """The ONNX model with a channel mask multiplied into the tap's output
    (ONNX Runtime, CPU): an independent check of cnnslicer's numbers and the
    way to evaluate a pruning order on images it was not chosen on."""

    def __init__(self, model_path, tap, channels):
        import onnx
        import onnxruntime as ort
        from onnx import helper, TensorProto
        m = onnx.load(model_path)
        g = m.graph
        node = next(n for n in g.node if n.name == tap)
        out = node.output[0]
        masked = out + "_masked"
        for n in g.node:
            for i, name in enumerate(n.input):
                if name == out:
                    n.input[i] = masked
        g.input.append(helper.make_tensor_value_info("cnnslicer_mask", TensorProto.FLOAT,
                                                     [1, channels, 1, 1]))
        idx = list(g.node).index(node)
        g.node.insert(idx + 1, helper.make_node("Mul", [out, "cnnslicer_mask"], [masked]))
        meta = {p.key: p.value for p in m.metadata_props}
        self.mean = np.array([float(v) for v in meta["cnnslicer.mean"].split(",")], np.float32)
        self.std = np.array([float(v) for v in meta["cnnslicer.std"].split(",")], np.float32)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        self.sess = ort.InferenceSession(m.SerializeToString(), so,
                                         providers=["CPUExecutionProvider"])
        self.input = g.input[0].name
        self.channels = channels

    def correct(self, images, labels, removed, batch=512):
        x = (images.astype(np.float32) / 255.0 - self.mean[None, :, None, None]) \
            / self.std[None, :, None, None]
        mask = np.ones((1, self.channels, 1, 1), np.float32)
        mask[0, list(removed), 0, 0] = 0
        n = 0
        for i in range(0, len(x), batch):
            logits = self.sess.run(None, {self.input: x[i:i + batch], "cnnslicer_mask": mask})[0]
            n += int((logits.argmax(axis=1) == labels[i:i + batch]).sum())
        return n

    def curve(self, images, labels, order):
        return [self.correct(images, labels, order[:j]) for j in range(len(order) + 1)]

# ---------------------------------------------------------------- PNG

def write_png(path, rgb):
    """rgb: uint8 [H, W, 3]."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


DIGITS = {  # 3x5 bitmap font
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111",
}


def draw_text(img, x, y, s, scale=2, color=(0, 0, 0)):
    for ch in s:
        bits = DIGITS[ch]
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    img[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = color
        x += 4 * scale


def filters_png(path, Wp, order, cell=48, pad=10, label_h=14):
    """Filters in pixel space as colour images, in the given order, each scaled
    to its own max |w| (mid-grey = 0), with the channel index above."""
    cols = 16
    rows = (len(order) + cols - 1) // cols
    H = rows * (cell + pad + label_h) + pad
    Wd = cols * (cell + pad) + pad
    img = np.full((H, Wd, 3), 255, np.uint8)
    k = Wp.shape[2]
    for i, ch in enumerate(order):
        f = Wp[ch].transpose(1, 2, 0)  # k,k,3
        f = 0.5 + 0.5 * f / np.abs(f).max()
        f = np.clip(np.round(f * 255), 0, 255).astype(np.uint8)
        f = np.repeat(np.repeat(f, cell // k, axis=0), cell // k, axis=1)
        r, c = divmod(i, cols)
        y = pad + r * (cell + pad + label_h) + label_h
        x = pad + c * (cell + pad)
        img[y:y + f.shape[0], x:x + f.shape[1]] = f
        draw_text(img, x, y - label_h + 2, str(ch))
    write_png(path, img)


# ---------------------------------------------------------------- report

def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--car")
    ap.add_argument("--analysis")
    ap.add_argument("--analysis-channel")
    ap.add_argument("--halves", nargs=2, help="single-shot CAR JSON of the two halves")
    ap.add_argument("--holdout", nargs=2, help="greedy CAR JSON of the two halves (needs --data "
                    "and onnxruntime): each half's orders evaluated on the other half")
    ap.add_argument("--data")
    ap.add_argument("--model")
    ap.add_argument("--filters-png")
    ap.add_argument("--random-orders", type=int, default=0,
                    help="with --holdout: also the AUC of N more random orders (numpy seed 1..N)")
    ap.add_argument("--split-half", nargs=2, metavar=("DATA", "OUTDIR"))
    ap.add_argument("--colour-threshold", type=float, default=0.5)
    a = ap.parse_args()

    if a.split_half:
        src, dst = a.split_half
        raw = open(os.path.join(src, "test_batch.bin"), "rb").read()
        n = len(raw) // 3073
        half = (n + 1) // 2
        os.makedirs(dst, exist_ok=True)
        with open(os.path.join(dst, "test_batch.bin"), "wb") as f:
            f.write(raw[half * 3073:])
        meta = os.path.join(src, "batches.meta.txt")
        if os.path.exists(meta):
            with open(meta) as fi, open(os.path.join(dst, "batches.meta.txt"), "w") as fo:
                fo.write(fi.read())
        print(f"first half: --limit {half}; second half ({n - half} images): {dst}")
        return
    if not (a.car and a.analysis):
        ap.error("--car and --analysis are required")

    car = json.load(open(a.car))
    assert car["format"] == "cnnslicer.car.v1"
    ana = json.load(open(a.analysis))
    tap = next(t for t in ana["taps"] if t["name"] == car["tap"])
    n_img = car["images"]
    C = car["channels"]
    model = a.model or car["model"]
    conv_name, W, bn_scale, mean, std = first_conv(model)
    assert W.shape[0] == C, "the tap is not the first convolution's output"

    Wp = W / std[None, :, None, None]          # pixel-space weights
    fr = decompose(Wp)
    csi = fr["chr_dc"] + fr["chr_sp"]
    ssi = fr["ach_sp"] + fr["chr_sp"]
    csi_norm = 1 - np.array([((w.mean(axis=0)) ** 2).sum() * 3 / (w ** 2).sum() for w in W])
    l1 = np.abs(W).sum(axis=(1, 2, 3))
    l1_bn = l1 * np.abs(bn_scale)
    ent = np.array(tap["channel_ensemble_entropy"])
    ent_ch = None
    if a.analysis_channel:
        t2 = next(t for t in json.load(open(a.analysis_channel))["taps"] if t["name"] == car["tap"])
        ent_ch = np.array(t2["channel_ensemble_entropy"])
    carv = np.array(car["car"])
    car_n = np.round(carv * n_img).astype(int)   # images lost
    order = car["greedy"]["order"]
    remaining = [c for c in range(C) if c not in order]
    full_order = order + remaining                # last = kept
    grank = np.empty(C, int)
    grank[full_order] = np.arange(1, C + 1)
    colour = csi > a.colour_threshold
    rcsi = None
    if a.data:
        labels, imgs = read_cifar_test(a.data)
        rcsi = response_csi(Wp, imgs[:n_img])

    # consistency checks against the JSON
    assert np.allclose(car["baselines"]["l1"]["norms"], l1, rtol=1e-5), "L1 norms differ"
    assert np.allclose(car["baselines"]["entropy"]["entropies"], ent, atol=1e-6), "entropies differ"

    print(f"# CAR study: {model}, tap {car['tap']} ({C} channels, producing conv {conv_name}), "
          f"{n_img} images, accuracy {car['accuracy']:.4f} ({round(car['accuracy'] * n_img)}/{n_img})\n")
    print(f"input mean {mean.tolist()}, std {std.tolist()}; weights in pixel units = W / std_c\n")

    # ---- 1. curves
    print("## 1. Pruning curves (accuracy % after removing j filters)\n")
    curves = {"greedy CAR": car["greedy"]["accuracy"]}
    for k in ("l1", "random", "entropy"):
        curves[k] = car["baselines"][k]["accuracy"]
    acc0 = car["accuracy"]
    js = [1, 2, 4, 8, 12, 16, 20, 24, 28, 31]
    js = [j for j in js if j <= len(curves["greedy CAR"])]
    rows = []
    for name, cv in curves.items():
        full = [acc0] + list(cv)
        full = np.asarray(full)
        auc = ((full[1:] + full[:-1]) / 2).sum() / (len(full) - 1)
        rows.append([name] + [f"{100 * cv[j - 1]:.1f}" for j in js] + [f"{100 * auc:.1f}"])
    print(table(["removed j →"] + [str(j) for j in js] + ["mean (AUC)"], rows))
    print(f"\n(full model: {100 * acc0:.2f} %; AUC = trapezoid area over j = 0..{len(full) - 1}, "
          "divided by the number of steps, i.e. the mean accuracy along the curve)\n")
    for name in ("l1", "random", "entropy"):
        cv = np.array(curves[name])
        g = np.array(curves["greedy CAR"])
        print(f"- greedy minus {name}: mean {100 * (g - cv).mean():+.1f} pp, "
              f"max {100 * (g - cv).max():+.1f} pp at j={int(np.argmax(g - cv)) + 1}, "
              f"greedy below {name} at {int((g < cv).sum())} of {len(g)} steps")
    print()
    print("Orders (first removed first):\n")
    for name in ("greedy", "l1", "random", "entropy"):
        o = car["greedy"]["order"] if name == "greedy" else car["baselines"][name]["order"]
        print(f"- {name}: {' '.join(map(str, o))}")
    print()

    # ---- single-shot CAR
    vals, counts = np.unique(car_n, return_counts=True)
    print("## Single-shot CAR (images lost of "
          f"{n_img} when one filter is removed from the full model)\n")
    print(f"range {car_n.min()} .. {car_n.max()} images; {len(vals)} distinct values for {C} filters; "
          f"{int((counts[counts > 1]).sum())} filters share their value with another; "
          f"{int((car_n <= 0).sum())} filters have CAR <= 0\n")
    sc_order = list(np.argsort(car_n, kind="stable"))
    print(f"- first 8 by single-shot CAR (ties by index): {' '.join(map(str, sc_order[:8]))}")
    print(f"- overlap of first 8 / 16 of single-shot and greedy: "
          f"{len(set(sc_order[:8]) & set(order[:8]))} / {len(set(sc_order[:16]) & set(order[:16]))}")
    print(f"- Spearman(single-shot CAR, greedy removal rank) = {spearman(car_n, grank):.2f}\n")

    # ---- 2. colour
    print("## 2. Colour selectivity of the filters in greedy order\n")
    rows = []
    for pos, ch in enumerate(full_order, 1):
        rows.append([pos, ch, car_n[ch], f"{csi[ch]:.2f}", f"{fr['chr_dc'][ch]:.2f}",
                     f"{ssi[ch]:.2f}"] + ([f"{rcsi[ch]:.2f}"] if rcsi is not None else [])
                    + ["colour" if colour[ch] else "shape", f"{l1_bn[ch]:.2f}", f"{ent[ch]:.2f}"])
    hdr = ["greedy #", "filter", "CAR (images)", "CSI", "colour-blob share", "SSI"] + \
          (["response CSI"] if rcsi is not None else []) + ["class (CSI>%.1f)" % a.colour_threshold,
                                                           "L1 × BN scale", "entropy (bits)"]
    print(table(hdr, rows))
    print(f"\nchance level for random 3x3 filters: CSI 0.67, colour-blob share 0.07, SSI 0.89\n")
    rows = []
    for q in range(4):
        grp = full_order[q * C // 4:(q + 1) * C // 4]
        rows.append([f"{q * C // 4 + 1}–{(q + 1) * C // 4}", " ".join(map(str, grp)),
                     f"{int(colour[grp].sum())} / {len(grp)}", f"{int((csi[grp] > 2 / 3).sum())}",
                     f"{csi[grp].mean():.2f}", f"{int((fr['chr_dc'][grp] > 0.3).sum())}"]
                    + ([f"{rcsi[grp].mean():.2f}"] if rcsi is not None else [])
                    + [f"{car_n[grp].mean():.1f}", f"{ent[grp].mean():.2f}"])
    print(table(["greedy positions", "filters", f"CSI > {a.colour_threshold}", "CSI > 0.67", "mean CSI",
                 "colour blobs (blob share > 0.3)"] + (["mean response CSI"] if rcsi is not None else [])
                + ["mean single-shot CAR (images)", "mean entropy (bits)"], rows))
    print()
    m = int(colour.sum())
    print(f"colour-selective (CSI > {a.colour_threshold}): {m} of {C}; "
          f"median CSI {np.median(csi):.2f} (in normalised units {np.median(csi_norm):.2f})\n")
    rows = []
    for thr in (a.colour_threshold, 2 / 3):
        col = csi > thr
        mt = int(col.sum())
        for k in (8, 10, 16):
            first = full_order[:k]
            x = int(col[first].sum())
            diff, p = perm_mean_diff_p(csi, first)
            row = [f"first {k} pruned, CSI > {thr:.2f}", f"{x} / {k}", f"{x / k:.0%}", f"{mt / C:.0%}",
                   f"{hypergeom_upper(x, C, mt, k):.2f}",
                   f"{csi[first].mean():.2f} vs {np.delete(csi, first).mean():.2f}", f"{p:.2f}"]
            if rcsi is not None:
                row.append(f"{rcsi[first].mean():.2f} vs {np.delete(rcsi, first).mean():.2f}")
            rows.append(row)
    hdr = ["set", "colour-selective", "share", "share among all 32", "P(≥ by chance)",
           "mean CSI set vs rest", "perm. p"] + (["mean response CSI set vs rest"] if rcsi is not None else [])
    print(table(hdr, rows))
    print()
    rho, p = spearman_perm_p(csi, grank)
    print(f"- Spearman(CSI, greedy removal rank) = {rho:+.2f} (perm. p = {p:.2f}); "
          f"positive = colour filters pruned later")
    rho, p = spearman_perm_p(csi, car_n)
    print(f"- Spearman(CSI, single-shot CAR) = {rho:+.2f} (perm. p = {p:.2f})")
    rho, p = spearman_perm_p(fr["chr_dc"], grank)
    print(f"- Spearman(colour-blob share, greedy removal rank) = {rho:+.2f} (perm. p = {p:.2f})")
    if rcsi is not None:
        rho, p = spearman_perm_p(rcsi, grank)
        print(f"- Spearman(response CSI, greedy removal rank) = {rho:+.2f} (perm. p = {p:.2f})")
        print(f"- Spearman(CSI, response CSI) = {spearman(csi, rcsi):+.2f}")
    print()

    # class-wise CAR of the most important and the colour filters
    cc = np.array(car["class_car"])
    cls = car["classes"]
    counts_k = np.array(car["class_counts"])
    print("## Class-wise CAR (images lost in the class) of the last 8 filters greedy keeps "
          "and of the colour-selective filters\n")
    rows = []
    shown = list(dict.fromkeys(full_order[::-1][:8] + [c for c in full_order if colour[c]]))
    for ch in shown:
        lost = np.round(cc[ch] * counts_k).astype(int)
        top = np.argsort(-lost, kind="stable")[:2]
        low = int(np.argmin(lost))
        rows.append([ch, grank[ch], f"{csi[ch]:.2f}", car_n[ch],
                     ", ".join(f"{cls[t]} {lost[t]}" for t in top), f"{cls[low]} {lost[low]}"])
    print(table(["filter", "greedy #", "CSI", "CAR", "most important classes", "least"], rows))
    print()

    # ---- 3. entropy / L1 vs CAR
    print("## 3. Does low entropy (or low L1) predict low CAR?\n")
    rows = []
    preds = [("ensemble entropy (layer range)", ent), ("L1 norm of conv filter (the baseline)", l1),
             ("L1 × abs(BN scale) (BN folded into the filter)", l1_bn)]
    if ent_ch is not None:
        preds.insert(1, ("ensemble entropy (channel range)", ent_ch))
    for name, v in preds:
        r1, p1 = spearman_perm_p(v, car_n)
        r2, p2 = spearman_perm_p(v, grank)
        fmt = lambda q: f"{q:.3f}" if q >= 0.001 else "< 0.001"
        rows.append([name, f"{r1:+.2f}", fmt(p1), f"{r2:+.2f}", fmt(p2)])
    print(table(["predictor", "ρ with single-shot CAR", "perm. p", "ρ with greedy removal rank",
                 "perm. p"], rows))
    print("\n(positive ρ = the predictor ranks like CAR; 20,000 seeded permutations)\n")
    for name, base in (("entropy", "entropy"), ("L1", "l1"), ("random", "random")):
        bo = car["baselines"][base]["order"]
        print(f"- overlap of first 8 / 16 removed, {name} vs greedy: "
              f"{len(set(bo[:8]) & set(order[:8]))} / {len(set(bo[:16]) & set(order[:16]))} "
              f"(chance ≈ 2.0 / 8.0)")
    print()

    # ---- reliability
    if a.halves:
        h = [json.load(open(p)) for p in a.halves]
        hc = [np.round(np.array(x["car"]) * x["images"]).astype(int) for x in h]
        print("## Split-half reliability of single-shot CAR\n")
        print(f"halves of {h[0]['images']} and {h[1]['images']} images, accuracies "
              f"{h[0]['accuracy']:.4f} / {h[1]['accuracy']:.4f}")
        rho, p = spearman_perm_p(hc[0], hc[1])
        print(f"- Spearman(CAR half A, CAR half B) = {rho:+.2f} (perm. p = {p:.3f})")
        rb = 2 * rho / (1 + rho) if rho > -1 else float("nan")
        print(f"- Spearman–Brown estimate for the full set: {rb:.2f}")
        a8 = set(np.argsort(hc[0], kind="stable")[:8])
        b8 = set(np.argsort(hc[1], kind="stable")[:8])
        print(f"- overlap of the 8 lowest-CAR filters of the two halves: {len(a8 & b8)} / 8")
        for i in (0, 1):
            print(f"- half {'AB'[i]}: Spearman(entropy, CAR) = {spearman(ent, hc[i]):+.2f}, "
                  f"Spearman(CSI, CAR) = {spearman(csi, hc[i]):+.2f}")
        print()


    if a.holdout:
        if not a.data:
            ap.error("--holdout needs --data")
        labels_all, imgs_all = read_cifar_test(a.data)
        labels_all, imgs_all = labels_all[:n_img], imgs_all[:n_img]
        mm = MaskedModel(model, car["tap"], C)
        print("## Held-out pruning curves (ONNX Runtime with a channel mask)\n")
        ort_full = mm.curve(imgs_all, labels_all, order)
        json_full = [round(acc0 * n_img)] + [round(v * n_img) for v in car["greedy"]["accuracy"]]
        diff = max(abs(p - q) for p, q in zip(ort_full, json_full))
        print(f"check: the greedy curve of all {n_img} images re-evaluated with ONNX Runtime "
              f"differs from cnnslicer's by at most {diff} image(s) per step\n")
        hs = [json.load(open(p)) for p in a.holdout]
        half = hs[0]["images"]
        parts = [(imgs_all[:half], labels_all[:half]), (imgs_all[half:], labels_all[half:])]
        assert hs[1]["images"] == n_img - half
        methods = ["greedy CAR", "l1", "random", "entropy"]
        res = {mth: [] for mth in methods}
        insample = []
        for fit in (0, 1):
            ev = 1 - fit
            h = hs[fit]
            for mth in methods:
                o = h["greedy"]["order"] if mth == "greedy CAR" else h["baselines"][mth]["order"]
                cv = np.array(mm.curve(*parts[ev], o)) / len(parts[ev][1])
                res[mth].append(cv)
            insample.append(np.array([h["accuracy"]] + h["greedy"]["accuracy"]))
        def auc(cv):
            return ((cv[1:] + cv[:-1]) / 2).sum() / (len(cv) - 1)
        js2 = [j for j in (1, 2, 4, 8, 12, 16, 20, 24, 28, 31) if j < C]
        rows = []
        for mth in methods:
            cv = (res[mth][0] * len(parts[1][1]) + res[mth][1] * len(parts[0][1])) / n_img
            rows.append([mth + " (held out)"] + [f"{100 * cv[j]:.1f}" for j in js2] +
                        [f"{100 * auc(cv):.1f}"])
        ins = (insample[0] * half + insample[1] * (n_img - half)) / n_img
        rows.append(["greedy CAR (on the half it was fitted on)"] + [f"{100 * ins[j]:.1f}" for j in js2]
                    + [f"{100 * auc(ins):.1f}"])
        print(table(["removed j →"] + [str(j) for j in js2] + ["mean (AUC)"], rows))
        print("\n(each half's orders evaluated on the other half, the two halves' correct counts "
              "pooled; L1 and random orders do not depend on the images, the entropy order uses no "
              "labels)\n")
        if a.random_orders:
            aucs = []
            for sd in range(1, a.random_orders + 1):
                o = list(np.random.default_rng(sd).permutation(C)[:C - 1])
                aucs.append(auc(np.array(mm.curve(imgs_all, labels_all, o)) / n_img))
            aucs = np.array(aucs)
            print(f"- {a.random_orders} more random orders on all images: AUC mean {100 * aucs.mean():.1f} %, "
                  f"sd {100 * aucs.std(ddof=1):.1f}, min {100 * aucs.min():.1f}, max {100 * aucs.max():.1f}")
        for fit in (0, 1):
            print(f"- fitted on half {'AB'[fit]}: greedy order "
                  f"{' '.join(map(str, hs[fit]['greedy']['order']))}")
        go = [hs[0]["greedy"]["order"], hs[1]["greedy"]["order"]]
        print(f"- overlap of the first 8 / 16 greedy removals of the two halves: "
              f"{len(set(go[0][:8]) & set(go[1][:8]))} / {len(set(go[0][:16]) & set(go[1][:16]))}; "
              f"with the full-set order: {len(set(go[0][:16]) & set(order[:16]))}, "
              f"{len(set(go[1][:16]) & set(order[:16]))} of 16")
        ra = np.empty(C, int); ra[go[0] + [c for c in range(C) if c not in go[0]]] = np.arange(1, C + 1)
        rb = np.empty(C, int); rb[go[1] + [c for c in range(C) if c not in go[1]]] = np.arange(1, C + 1)
        print(f"- Spearman(greedy rank half A, greedy rank half B) = {spearman(ra, rb):+.2f}")
        for fit, rk in ((0, ra), (1, rb)):
            print(f"- half {'AB'[fit]}: Spearman(CSI, greedy rank) = {spearman(csi, rk):+.2f}, "
                  f"colour-selective among first 8 / 16: {int(colour[go[fit][:8]].sum())} / "
                  f"{int(colour[go[fit][:16]].sum())}")
        print()
    if a.filters_png:
        filters_png(a.filters_png, Wp, full_order)
        print(f"wrote {a.filters_png} (filters in greedy removal order, row-major; "
              f"each scaled to its own max |w|, grey = 0)")


if __name__ == "__main__":
    main()
