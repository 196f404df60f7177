#!/usr/bin/env python3
"""Generate the ONNX test fixtures of SlicerEngineTests.

HOW TO RUN (two Pythons are involved):

    /usr/bin/python3 tools/make_fixtures.py

Step 1 runs in Debian's Python (needs python3-torch, numpy): it builds three
small seeded models, exports them with
    torch.onnx.export(..., opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False, dynamic batch axis)
after model.eval(), and saves inputs / PyTorch logits / one intermediate tap
(taken with a forward hook) as .npy files.

Step 2 is started automatically as a subprocess with a Python that has the
`onnx` and `onnxruntime` pip packages (env CNNSLICER_ONNX_PYTHON, else the
`python3` found on PATH, e.g. pyenv).  It can also be run by hand:

    python3 tools/make_fixtures.py --post Tests/SlicerEngineTests/Fixtures

Step 2 prints each model's operator list and refuses anything outside the
operator set of SPEC §1, finds the ONNX node that produced the tap (by
running onnxruntime with every node output exposed and matching the values
of the hook), inserts a Dropout node in bn_cnn (see below), adds the
metadata_props to plain_cnn.onnx, checks onnxruntime against the PyTorch
logits (max abs diff <= 1e-5) and writes fixtures.json.

Notes
- PRESERVE + eval(): torch exports the model in inference mode; every
  BatchNormalization node has a single output and training_mode unset (= 0);
  step 2 asserts this.
- In eval mode torch drops nn.Dropout from the graph (it is an identity).
  So that the fixtures exercise the Dropout op, step 2 inserts an inference
  Dropout node (no ratio/training_mode inputs = identity) after the Reshape
  in bn_cnn.onnx; the output does not change (checked with onnxruntime).
- plain_cnn uses AvgPool(kernel 3, stride 2, ceil_mode, count_include_pad
  False) on a 12x12 map, so that ceil mode matters (6x6 instead of 5x5) and
  the last window is partial; bn_cnn uses Reshape(-1, 12) instead of Flatten
  so that Reshape is covered too.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, '..', 'Tests', 'SlicerEngineTests', 'Fixtures')

ALLOWED_OPS = {'Conv', 'BatchNormalization', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh',
               'Clip', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Gemm', 'MatMul',
               'Add', 'Mul', 'Concat', 'Flatten', 'Reshape', 'Identity', 'Dropout',
               'Softmax', 'Constant'}
NON_TAP_OPS = {'Flatten', 'Reshape', 'Identity', 'Dropout', 'Constant', 'Shape',
               'Gather', 'Squeeze', 'Unsqueeze', 'Cast'}

# model name -> (input shape CHW, expected op type of the tap node, description)
MODELS = {
    'plain_cnn': ((1, 28, 28), 'Relu', 'second Relu (after the 8->16 conv)'),
    'bn_cnn': ((3, 16, 16), 'Clip', 'Clip (ReLU6) that ends the second conv block'),
    'residual_cnn': ((3, 8, 8), 'Add', 'Add of the residual block (before its Relu)'),
}
LABELS = 'zero,one,two,three,four,five,six,seven,eight,nine'


# ----------------------------------------------------------------------------
# Step 1: torch (Debian python3)
# ----------------------------------------------------------------------------
def torch_step(out):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.manual_seed(0)

    def randomize_bn(bn):
        c = bn.num_features
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(c) * 0.5)
            bn.running_var.copy_(torch.rand(c) * 1.5 + 0.25)
            bn.weight.copy_(torch.randn(c) * 0.5 + 1.0)
            bn.bias.copy_(torch.randn(c) * 0.3)

    class PlainCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(8, 16, 3, stride=1, padding=0)      # 14 -> 12
            self.relu2 = nn.ReLU()
            self.pool2 = nn.AvgPool2d(3, stride=2, ceil_mode=True,
                                      count_include_pad=False)        # 12 -> 6 (ceil)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(16 * 6 * 6, 32)
            self.act = nn.LeakyReLU(0.1)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            return self.fc2(self.act(self.fc1(self.flatten(x))))

    class BNCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)            # 16 -> 8
            self.conv2 = nn.Conv2d(8, 12, 3, padding=2, dilation=2, groups=2)
            self.bn2 = nn.BatchNorm2d(12)
            self.bias = nn.Parameter(torch.randn(1, 12, 1, 1) * 0.5)
            self.relu6 = nn.ReLU6()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(12, 10)
            randomize_bn(self.bn1)
            randomize_bn(self.bn2)

        def forward(self, x):
            x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
            y = self.bn2(self.conv2(x))
            y = torch.tanh(y) * torch.sigmoid(y)        # Tanh, Sigmoid, Mul
            y = y * 3.0 + self.bias                     # Mul by Constant, broadcast Add
            y = self.relu6(y)                           # Clip(0, 6)  <- tap
            f = self.gap(y).reshape(-1, 12)             # GlobalAveragePool, Reshape
            f = f * torch.softmax(f, dim=1) * 12.0      # Softmax (axis 1, rank 2)
            return self.fc(self.drop(f))

    class ResBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            randomize_bn(self.bn1)
            randomize_bn(self.bn2)

        def forward(self, x):
            return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x  # Add <- tap

    class ResidualCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(8), nn.ReLU())
            randomize_bn(self.stem[1])
            self.block = ResBlock(8)
            self.relu = nn.ReLU()
            self.branch_a = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU())
            self.branch_b = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.Tanh())
            self.mix = nn.Conv2d(10, 16, 1)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.W = nn.Parameter(torch.randn(16, 10) * 0.3)
            self.b = nn.Parameter(torch.randn(10) * 0.1)

        def forward(self, x):
            x = self.relu(self.block(self.stem(x)))
            x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
            x = self.flatten(self.gap(self.mix(x)))
            return torch.matmul(x, self.W) + self.b

    builders = {'plain_cnn': (PlainCNN, 'relu2'),
                'bn_cnn': (BNCNN, 'relu6'),
                'residual_cnn': (ResidualCNN, 'block')}
    os.makedirs(out, exist_ok=True)
    for name, (cls, tap_module) in builders.items():
        chw = MODELS[name][0]
        model = cls()
        model.eval()
        x = torch.randn(4, *chw)
        if name == 'plain_cnn':      # image-like values in [0,1] normalised with mean .5 std .25
            x = (torch.rand(4, *chw) - 0.5) / 0.25
        captured = {}
        h = getattr(model, tap_module).register_forward_hook(
            lambda m, i, o: captured.__setitem__('tap', o.detach().clone()))
        with torch.no_grad():
            y = model(x)
        h.remove()
        path = os.path.join(out, name + '.onnx')
        torch.onnx.export(model, x, path, opset_version=13,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
        np.save(os.path.join(out, name + '_input.npy'),
                np.ascontiguousarray(x.numpy().astype(np.float32)))
        np.save(os.path.join(out, name + '_output.npy'),
                np.ascontiguousarray(y.numpy().astype(np.float32)))
        np.save(os.path.join(out, name + '_tap.npy'),
                np.ascontiguousarray(captured['tap'].numpy().astype(np.float32)))
        print('[torch] %s: input %s logits %s tap %s (%s)' % (
            name, tuple(x.shape), tuple(y.shape), tuple(captured['tap'].shape), tap_module))


# ----------------------------------------------------------------------------
# Step 2: onnx + onnxruntime (pip python)
# ----------------------------------------------------------------------------
def onnx_step(out):
    import numpy as np
    import onnx
    from onnx import helper, TensorProto
    import onnxruntime as ort

    def run(model_proto, x, outputs=None):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model_proto.SerializeToString(), so,
                                    providers=['CPUExecutionProvider'])
        names = outputs or [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, {'input': x})))

    summary = {'generator': 'tools/make_fixtures.py', 'opset': 13,
               'torch_export': 'training=PRESERVE (model.eval()), do_constant_folding=False',
               'tolerance': 1e-5, 'models': {}}
    for name, (chw, tap_op, tap_desc) in MODELS.items():
        path = os.path.join(out, name + '.onnx')
        m = onnx.load(path)
        g = m.graph

        if name == 'bn_cnn':
            # Insert an inference Dropout (identity) after the Reshape, if torch dropped it.
            if not any(n.op_type == 'Dropout' for n in g.node):
                idx = [i for i, n in enumerate(g.node) if n.op_type == 'Reshape'][0]
                rs = g.node[idx]
                old = rs.output[0]
                new = old + '_predrop'
                rs.output[0] = new
                drop = helper.make_node('Dropout', [new], [old], name='/drop/Dropout')
                g.node.insert(idx + 1, drop)

        ops = [n.op_type for n in g.node]
        bad = sorted(set(ops) - ALLOWED_OPS)
        if bad:
            raise SystemExit('%s: operators outside the supported set: %s' % (name, bad))
        for n in g.node:
            if n.op_type == 'BatchNormalization':
                attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
                assert len(n.output) == 1 and attrs.get('training_mode', 0) == 0, \
                    '%s: BatchNormalization %s is not in inference mode' % (name, n.name)

        if name == 'plain_cnn':
            del m.metadata_props[:]
            for k, v in (('cnnslicer.mean', '0.5'), ('cnnslicer.std', '0.25'),
                         ('cnnslicer.labels', LABELS)):
                p = m.metadata_props.add()
                p.key, p.value = k, v
        onnx.checker.check_model(m)
        onnx.save(m, path)

        x = np.load(os.path.join(out, name + '_input.npy'))
        y_torch = np.load(os.path.join(out, name + '_output.npy'))
        tap = np.load(os.path.join(out, name + '_tap.npy'))

        # Expose every node output and find the node whose output equals the hooked tensor.
        probe = onnx.load(path)
        existing = {o.name for o in probe.graph.output}
        for n in probe.graph.node:
            if n.op_type == 'Constant':
                continue
            for o in n.output:
                if o and o not in existing:
                    probe.graph.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
        vals = run(probe, x)
        y_ort = vals['logits']
        diff = float(np.max(np.abs(y_ort - y_torch)))
        matches = []
        for n in probe.graph.node:
            if n.op_type in NON_TAP_OPS:
                continue
            v = vals.get(n.output[0])
            if v is not None and v.shape == tap.shape and np.max(np.abs(v - tap)) <= 1e-5:
                matches.append(n)
        matches = [n for n in matches if n.op_type == tap_op]
        if not matches:
            raise SystemExit('%s: no %s node reproduces the hooked tap' % (name, tap_op))
        tn = matches[0]
        tap_diff = float(np.max(np.abs(vals[tn.output[0]] - tap)))
        tap_name = tn.name if tn.name else tn.output[0]
        topo_taps = ['input'] + [(n.name or n.output[0]) for n in g.node if n.op_type not in NON_TAP_OPS]

        print('[onnx] %s ops (%d nodes): %s' % (name, len(ops), ' '.join(ops)))
        print('[onnx] %s tap: node %r op %s output tensor %r shape %s, |ORT-torch| = %.2e'
              % (name, tn.name, tn.op_type, tn.output[0], tap.shape, tap_diff))
        print('[onnx] %s logits: max |ORT - torch| = %.3e (%s)'
              % (name, diff, 'OK' if diff <= 1e-5 else 'FAIL'))
        if diff > 1e-5:
            raise SystemExit('%s: onnxruntime differs from torch by %g' % (name, diff))
        summary['models'][name] = {
            'onnx': name + '.onnx',
            'input': name + '_input.npy', 'input_shape': list(x.shape),
            'output': name + '_output.npy', 'output_shape': list(y_torch.shape),
            'tap': name + '_tap.npy', 'tap_shape': list(tap.shape),
            'tap_node': tap_name, 'tap_node_name': tn.name, 'tap_tensor': tn.output[0],
            'tap_op': tn.op_type, 'tap_description': tap_desc,
            'tap_index': topo_taps.index(tap_name),
            'taps': topo_taps,
            'ops': ops,
            'ort_max_abs_diff_logits': diff,
            'ort_max_abs_diff_tap': tap_diff,
            'metadata_props': {p.key: p.value for p in m.metadata_props},
        }
    with open(os.path.join(out, 'fixtures.json'), 'w') as f:
        json.dump(summary, f, indent=1)
        f.write('\n')
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print('[onnx] fixtures total size: %d bytes' % total)


def onnx_python():
    env = os.environ.get('CNNSLICER_ONNX_PYTHON')
    if env:
        return env
    for cand in [shutil.which('python3'), os.path.expanduser('~/.pyenv/shims/python3')]:
        if cand and os.path.realpath(cand) != os.path.realpath(sys.executable):
            return cand
    raise SystemExit('no python with onnx/onnxruntime found; set CNNSLICER_ONNX_PYTHON')


if __name__ == '__main__':
    args = sys.argv[1:]
    if args and args[0] == '--post':
        onnx_step(os.path.abspath(args[1] if len(args) > 1 else DEFAULT_OUT))
    else:
        out = os.path.abspath(args[0] if args else DEFAULT_OUT)
        torch_step(out)
        py = onnx_python()
        print('[step 2] %s %s --post %s' % (py, __file__, out))
        subprocess.run([py, os.path.abspath(__file__), '--post', out], check=True)
