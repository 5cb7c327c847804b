"""The builders a script (or the command line) reaches by name: models.create, optim.create,
lr_scheduler.create, nn.init.apply, nn.norm_layer and data.standardized_split."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import models, nn, optim
from minigrad.data import standardized_split
from minigrad.optim import lr_scheduler


def _layout(model):
    return [type(m).__name__ for m in model]


def test_lenet5_adapts_to_channels_size_norm_and_dropout():
    model = models.lenet5(7, in_channels=3, image_size=32, norm="batch", dropout=0.25)
    assert _layout(model) == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert model[9].weight.shape == (120, 576)  # 16 * 6 * 6 features from 32x32 images
    assert model(mg.randn(2, 3, 32, 32)).shape == (2, 7)
    assert _layout(models.lenet5()) == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    with pytest.raises(ValueError, match="at least 16x16, got 8x8"):
        models.lenet5(image_size=8)


def test_resnet8_other_norms_keep_the_fused_relu_slot_and_dropout_goes_before_fc():
    model = models.resnet8(5, in_channels=1, norm="group", dropout=0.5)
    assert isinstance(model.bn1, nn.NormReLU) and isinstance(model.bn1.norm, nn.GroupNorm)
    assert model.bn1.norm.num_groups == 8
    assert _layout(model.fc) == ["Dropout", "Linear"]
    assert "layer1.0.bn1.norm.weight" in model.state_dict() and "fc.1.weight" in model.state_dict()
    assert model(mg.randn(2, 1, 12, 12)).shape == (2, 5)
    bare = models.resnet8(norm="none")
    assert not [m for m in bare.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert list(models.resnet8().state_dict()) == list(models.ResNet(1).state_dict())


def test_create_by_name_and_its_errors():
    mlp = models.create("mlp", (1, 8, 8), 10, norm="layer", dropout=0.1)
    assert _layout(mlp) == [
        "Flatten",
        "Linear",
        "LayerNorm",
        "ReLU",
        "Dropout",
        "Linear",
        "LayerNorm",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert isinstance(models.create("resnet8", (3, 32, 32)).bn1, nn.BatchNorm2d)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        models.create("vgg", (3, 32, 32))
    with pytest.raises(ValueError, match="unknown normalisation 'weight'"):
        nn.norm_layer("weight", 4, spatial=True)
    with pytest.raises(ValueError, match="two normalisations"):
        models.mlp([4, 4, 2], batchnorm=True, norm="layer")


def test_optim_create_presets_and_overrides():
    params = list(nn.Linear(3, 2).parameters())
    nesterov = optim.create("nesterov", params)
    assert isinstance(nesterov, optim.SGD)
    group = nesterov.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.05, 0.9, True)
    adamw = optim.create("adamw", params, lr=0.1, weight_decay=0.3)
    assert isinstance(adamw, optim.AdamW) and adamw.param_groups[0]["lr"] == 0.1
    assert adamw.param_groups[0]["weight_decay"] == 0.3 and optim.default_lr("adadelta") == 1.0
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        optim.create("lion", params)


def test_schedules_by_name():
    opt = optim.create("sgd", nn.Linear(2, 2).parameters(), lr=1.0)
    step = lr_scheduler.create("step", opt, epochs=9)
    for _ in range(3):
        opt.step()
        step.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # divided by 10 after a third of the run
    assert lr_scheduler.create("none", opt, 9) is None
    assert isinstance(lr_scheduler.create("plateau", opt, 9), lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_scheduler.create("linear", opt, 9)


def test_init_apply_schemes():
    model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Conv2d(64, 8, 3))
    nn.init.apply(model, "he")
    np.testing.assert_allclose(model[0].weight.numpy().std(), np.sqrt(2 / 400), rtol=0.03)
    assert not model[0].bias.numpy().any() and not model[2].bias.numpy().any()
    nn.init.apply(model, "normal")
    np.testing.assert_allclose(model[0].weight.numpy().std(), 0.01, rtol=0.03)
    before = model[0].weight.numpy().copy()
    assert nn.init.apply(model, "default") is model
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    with pytest.raises(ValueError, match="unknown initialisation 'lecun'"):
        nn.init.apply(model, "lecun")


def test_standardized_split_fits_on_the_training_part_only():
    x = np.arange(40, dtype=np.float32).reshape(10, 1, 2, 2)
    y = np.arange(10)
    (x_train, y_train), (x_val, y_val), scaling = standardized_split(x, y, 0.3, seed=1)
    assert len(y_train) == 7 and len(y_val) == 3 and sorted(np.concatenate([y_train, y_val])) == list(range(10))
    raw_train = x[y_train]
    np.testing.assert_allclose(x_train, (raw_train - raw_train.mean()) / raw_train.std(), rtol=1e-5)
    np.testing.assert_allclose(x_val, (x[y_val] - raw_train.mean()) / raw_train.std(), rtol=1e-5)
    assert scaling(x[:1]).shape == (1, 1, 2, 2)


def test_builders_refuse_what_a_tired_user_passes():
    with pytest.raises(ValueError, match="Conv2d: in_channels must be >= 1, got 0"):
        models.lenet5(in_channels=0)
    with pytest.raises(ValueError, match="Linear: out_features must be >= 1, got 0"):
        models.lenet5(0)
    with pytest.raises(TypeError, match="LeNet-5: image_size must be an int or a pair of ints, got 'ab'"):
        models.lenet5(image_size="ab")
    with pytest.raises(ValueError, match=r"image_shape must be \(channels, height, width\), got \(28, 28\)"):
        models.create("lenet5", (28, 28))
    opt = optim.create("sgd", nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="at least 1 epoch, got epochs=0"):
        lr_scheduler.create("cosine", opt, 0)
    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 1\)"):
            standardized_split(np.zeros((10, 1)), np.zeros(10), bad)
