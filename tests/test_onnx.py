"""ONNX export checked by onnxruntime: the models of minigrad.models and a DenseNet block give
minigrad's own evaluation outputs within 1e-5 at two batch sizes (the batch dimension is free),
a trained model classifies the digits test split exactly as minigrad does, and an op without a
mapping stops the export with its name and module."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from minigrad.onnx import UnsupportedOperation, export  # noqa: E402


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _warm_statistics(model, shape):
    """A few training-mode passes so batch norm's running statistics are not the defaults."""
    model.train()
    with mg.no_grad():
        for seed in range(3):
            model(mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32)))
    model.eval()


MODELS = {
    "lenet5": (lambda: mg.models.lenet5(), (1, 28, 28)),
    "resnet8": (lambda: mg.models.resnet8(), (3, 32, 32)),
    "resnet20": (lambda: mg.models.resnet20(), (3, 32, 32)),
    "mlp": (lambda: mg.models.mlp([64, 128, 64, 10], batchnorm=True, dropout=0.5), (64,)),
    "densenet-block": (
        lambda: nn.Sequential(nn.DenseBlock(3, 8, 4, bottleneck=2), nn.Transition(20, 10), nn.AdaptiveAvgPool2d(1)),
        (8, 8, 8),
    ),
    "norms-and-activations": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 8, 3, groups=1, dilation=2, padding=2),
            nn.GroupNorm(2, 8),
            nn.LeakyReLU(0.2),
            nn.Conv2d(8, 8, 3, groups=4, stride=2),
            nn.InstanceNorm2d(8, affine=True),
            nn.Tanh(),
            nn.AvgPool2d(2, padding=1),
            nn.Flatten(),
            nn.LayerNorm(32),
            nn.Linear(32, 6),
            nn.Sigmoid(),
        ),  # fmt: skip
        (3, 8, 8),
    ),
    "softmax-heads": (
        lambda: nn.Sequential(
            nn.Linear(12, 8),
            nn.Softmax(dim=1),
            nn.Linear(8, 5),
            nn.LogSoftmax(dim=-1),
            nn.Dropout(0.3),
            nn.DropConnectLinear(5, 4, p=0.5),
            nn.GaussianNoise(0.2),
        ),  # fmt: skip
        (12,),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_matches_minigrad_at_two_batch_sizes(name, tmp_path):
    build, shape = MODELS[name]
    mg.manual_seed(0)
    model = build()
    _warm_statistics(model, (4, *shape))
    path = export(model, mg.randn(2, *shape), tmp_path / f"{name}.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    session = _session(path)
    assert session.get_inputs()[0].shape[0] == "batch"
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
        with mg.no_grad():
            expected = model(mg.tensor(x)).data
        (got,) = session.run(None, {"input": x})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not model.training  # left as it was given (eval), and export did not change the weights


def test_export_leaves_training_mode_and_names_parameters(tmp_path):
    model = mg.models.lenet5()
    model.train()
    export(model, mg.randn(1, 1, 28, 28), tmp_path / "m.onnx", dynamic_batch=False)
    assert model.training
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert {"0_weight", "9_bias"} <= {init.name.rsplit("_", 1)[0] for init in graph.initializer}
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1  # a fixed batch when asked


def test_an_op_without_a_mapping_is_named_with_its_module(tmp_path):
    class Halves(nn.Module):
        def forward(self, x):
            return x[:, : x.shape[1] // 2]  # indexing: no mapping

    model = nn.Sequential(nn.Linear(4, 6), Halves(), nn.ReLU())
    with pytest.raises(UnsupportedOperation, match=r"op GetItem in module '1' \(Halves\) has no ONNX mapping"):
        export(model, mg.randn(2, 4), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_a_trained_model_classifies_the_digits_as_minigrad_does(tmp_path):
    pytest.importorskip("sklearn")
    from minigrad import cli

    run = tmp_path / "run"
    cli.main(["train", "--model", "mlp", "--epochs", "2", "--out", str(run)])
    assert cli.main(["export", "--checkpoint", str(run / "best.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 0
    x, y = mg.data.Digits(train=False, size=8).arrays
    state, config, model = cli._trained_model(run / "best.safetensors")
    scaled = mg.data.transforms.Standardize().load_state_dict(config["standardize"])(x)
    ours = mg.train.predict(model, scaled, 256).argmax(1)
    (logits,) = _session(tmp_path / "m.onnx").run(None, {"input": x.astype(np.float32)})  # raw images in
    theirs = logits.argmax(1)
    assert np.array_equal(theirs, ours) and (theirs == y).mean() > 0.8
