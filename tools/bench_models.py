#!/usr/bin/env python3
"""Export the benchmark models (random weights; only throughput matters).

    /usr/bin/python3 tools/bench_models.py OUTDIR

writes OUTDIR/mnist_cnn.onnx, OUTDIR/cifar_vgg.onnx, OUTDIR/cifar_resnet.onnx,
exported after model.eval() with opset 13, training=PRESERVE (BatchNormalization
kept, inference mode), do_constant_folding=False, input 'input', output
'logits', dynamic batch axis.  Seeded (torch.manual_seed(0)); BatchNorm running
statistics are set to random values so that BN is not an identity.

The architectures are also imported by tools/bench_torch.py (ARCHS, build()).
"""
import os
import sys

ARCHS = {
    # name: input shape (C, H, W)
    'mnist_cnn': (1, 28, 28),
    'cifar_vgg': (3, 32, 32),
    'cifar_resnet': (3, 32, 32),
}


def build(name):
    import torch
    import torch.nn as nn

    def cbr(cin, cout, stride=1):
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU()]

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu2 = nn.ReLU()
            self.proj = None
            if stride != 1 or cin != cout:
                self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(y + (x if self.proj is None else self.proj(x)))

    if name == 'mnist_cnn':
        model = nn.Sequential(*cbr(1, 32), nn.MaxPool2d(2), *cbr(32, 64), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                              nn.Linear(128, 10))
    elif name == 'cifar_vgg':
        layers, cin = [], 3
        for v in [64, 64, 'P', 128, 128, 'P', 256, 256, 'P']:
            if v == 'P':
                layers.append(nn.MaxPool2d(2))
            else:
                layers += cbr(cin, v)
                cin = v
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(256 * 4 * 4, 256), nn.ReLU(),
                              nn.Linear(256, 10))
    elif name == 'cifar_resnet':
        blocks, cin = [], 16
        for i, c in enumerate([16, 32, 64]):
            for j in range(2):
                blocks.append(BasicBlock(cin, c, 2 if (i > 0 and j == 0) else 1))
                cin = c
        model = nn.Sequential(*cbr(3, 16), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(64, 10))
    else:
        raise SystemExit('unknown architecture %r (known: %s)' % (name, ', '.join(ARCHS)))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c) * 0.1)
                m.running_var.copy_(torch.rand(c) * 0.5 + 0.75)
    model.eval()
    return model


def export(model, shape, path):
    import torch
    model.eval()
    x = torch.randn(1, *shape)
    torch.onnx.export(model, x, path, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})


def main():
    if len(sys.argv) != 2:
        raise SystemExit('usage: bench_models.py OUTDIR')
    import torch
    torch.set_num_threads(1)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, shape in ARCHS.items():
        torch.manual_seed(0)
        model = build(name)
        path = os.path.join(out, name + '.onnx')
        export(model, shape, path)
        n = sum(p.numel() for p in model.parameters())
        print('%s: %s, %d parameters, %d bytes' % (path, shape, n, os.path.getsize(path)))


if __name__ == '__main__':
    main()
