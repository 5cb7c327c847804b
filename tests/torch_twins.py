"""PyTorch twins of minigrad's blocks and models, with the same sub-module names so
``load_state_dict(strict=True)`` maps one onto the other: the oracle for the parity tests and the
PyTorch side of bench/. The one copy: import it after PyTorch is known to be present (tests get
it through ``module_parity``, which skips without PyTorch; bench imports it inside its setups)."""

import torch

nn = torch.nn
relu = torch.relu


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(relu(self.bn1(self.conv1(x)))))
        return relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, blocks_per_stage, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for stage, width in enumerate((16, 32, 64)):
            blocks = []
            for index in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, width, 2 if stage > 0 and index == 0 else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def resnet8(num_classes=10):
    return ResNet(1, num_classes)


def resnet20(num_classes=10):
    return ResNet(3, num_classes)


def mlp(sizes, batchnorm=False, dropout=0.0):
    """The twin of ``models.mlp``: Linear, then BatchNorm1d, ReLU and Dropout after each hidden layer."""
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers += [nn.BatchNorm1d(fan_out)] if batchnorm else []
            layers.append(nn.ReLU())
            layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers)


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bottleneck=None):
        super().__init__()
        width = cin
        if bottleneck:
            width = bottleneck * growth
            self.norm0 = nn.BatchNorm2d(cin)
            self.conv0 = nn.Conv2d(cin, width, 1, bias=False)
        self.bottleneck = bottleneck
        self.norm = nn.BatchNorm2d(width)
        self.conv = nn.Conv2d(width, growth, 3, padding=1, bias=False)

    def forward(self, x):
        if self.bottleneck:
            x = self.conv0(relu(self.norm0(x)))
        return self.conv(relu(self.norm(x)))


class DenseBlock(nn.Module):
    def __init__(self, num_layers, cin, growth, bottleneck=None):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth, bottleneck) for i in range(num_layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return x


class Transition(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        return self.pool(self.conv(relu(self.norm(x))))
