"""The training loop, callbacks, history and metrics on a tiny raw-tensor model."""

import io

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import DataLoader, TensorDataset
from minigrad.train import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LRSchedulerCallback,
    ProgressBar,
    Trainer,
    accuracy,
    confusion_matrix,
    evaluate,
    fit,
    predict,
    predict_tta,
    top_k_accuracy,
)


def test_fit_learns_and_records_each_epoch(problem):
    model, optimizer, loss_fn, train, val = problem
    history = fit(model, optimizer, loss_fn, train, val, epochs=6, progress=False)
    assert len(history) == 6 and history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history.columns == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "time"]
    assert history["train_loss"][-1] < 0.6 * history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.8
    assert history["lr"] == [0.05] * 6 and all(t > 0 for t in history["time"])
    scores = evaluate(model, val, loss_fn)  # the last row is what evaluate says about the final model
    assert scores["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert model.training  # evaluate put the model back into training mode


def test_train_loss_is_the_sample_weighted_mean_of_batch_losses(problem):
    model, optimizer, loss_fn, train, _ = problem

    class Record(Callback):
        def __init__(self):
            self.batches = []

        def on_batch_end(self, trainer, step, logs):
            self.batches.append((logs["loss"], logs["size"]))

    record = Record()
    history = fit(model, optimizer, loss_fn, train, epochs=1, callbacks=[record], progress=False)
    losses, sizes = np.array(record.batches).T
    assert list(sizes) == [32] * 7 + [16]
    assert history["train_loss"][0] == pytest.approx((losses * sizes).sum() / sizes.sum())


class _Scripted(Callback):
    """Overwrites the logged val_loss with a scripted sequence and snapshots the weights."""

    def __init__(self, values):
        self.values, self.weights = values, {}

    def on_epoch_end(self, trainer, epoch, logs):
        logs["val_loss"] = self.values[epoch - 1]
        self.weights[epoch] = {k: v.data.copy() for k, v in trainer.model.state_dict().items()}


def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights(problem):
    model, optimizer, loss_fn, train, val = problem
    script = _Scripted([1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6])
    stopper = EarlyStopping("val_loss", patience=3)
    history = fit(model, optimizer, loss_fn, train, val, epochs=7, callbacks=[script, stopper], progress=False)
    # best at epoch 2; epochs 3, 4, 5 do not improve -> stop after epoch 5
    assert len(history) == 5 and stopper.stopped_epoch == 5 and stopper.best_epoch == 2
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.data, script.weights[2][name])
    assert not np.array_equal(script.weights[2]["w1"], script.weights[5]["w1"])


def test_early_stopping_min_delta_and_max_mode(problem):
    model, optimizer, loss_fn, train, _ = problem

    class Trainer_:
        stop_training, epoch = False, 0
        model = problem[0]

    trainer = Trainer_()
    stopper = EarlyStopping("val_accuracy", patience=2, min_delta=0.01, restore_best_weights=False)
    assert stopper.mode == "max"
    for epoch, value in enumerate([0.50, 0.55, 0.555, 0.559], start=1):  # +0.005 and +0.009 are no improvement
        stopper.on_epoch_end(trainer, epoch, {"val_accuracy": value})
    assert trainer.stop_training and stopper.stopped_epoch == 4 and stopper.best == 0.55
    with pytest.raises(KeyError, match="needs a val_loader"):
        EarlyStopping().on_epoch_end(trainer, 1, {"train_loss": 1.0})


def test_scheduler_steps_once_per_epoch_and_history_holds_the_epochs_lr(problem, tiny):
    model, optimizer, loss_fn, train, _ = problem
    schedule = tiny[2](optimizer)
    history = fit(model, optimizer, loss_fn, train, epochs=3, scheduler=schedule, progress=False)
    assert history["lr"] == [0.05, 0.025, 0.0125] and schedule.last_epoch == 3

    class Plateau:
        def __init__(self):
            self.seen = []

        def step(self, metrics):
            self.seen.append(metrics)

    plateau = Plateau()
    with pytest.raises(KeyError, match="Plateau needs 'val_loss'"):
        fit(model, optimizer, loss_fn, train, epochs=1, callbacks=[LRSchedulerCallback(plateau)], progress=False)
    plateau = Plateau()
    history = fit(
        model, optimizer, loss_fn, train, problem[4], epochs=2, callbacks=[LRSchedulerCallback(plateau)], progress=False
    )
    assert plateau.seen == history["val_loss"]


def test_csv_logger_writes_the_history(problem, tmp_path):
    model, optimizer, loss_fn, train, val = problem
    history = fit(
        model, optimizer, loss_fn, train, val, epochs=2, callbacks=[CSVLogger(tmp_path / "log.csv")], progress=False
    )
    back = History.from_csv(tmp_path / "log.csv")
    assert back.columns == history.columns and back["epoch"] == [1, 2]
    np.testing.assert_allclose(back["val_loss"], history["val_loss"], rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # no temporary files left


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="History.plot needs matplotlib (pip install 'minigrad[plot]')")
    history = History(
        [
            {
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": 1 / e + 0.1,
                "train_accuracy": 0.5 + e / 10,
                "val_accuracy": 0.5,
            }
            for e in (1, 2, 3)
        ]
    )
    path = history.plot(tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert history.best("val_loss")["epoch"] == 3


def test_progress_bar_is_quiet_off_a_terminal_and_shows_on_one(problem, capsys):
    model, optimizer, loss_fn, train, _ = problem
    fit(model, optimizer, loss_fn, train, epochs=1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    pytest.importorskip("tqdm", reason="the progress bar needs tqdm (pip install 'minigrad[progress]')")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    fit(model, optimizer, loss_fn, train, epochs=1, callbacks=[ProgressBar(terminal)])
    assert "epoch 1" in terminal.getvalue() and "samples/s" in terminal.getvalue()


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the diverged softmax
def test_nan_guard_names_the_step_and_the_learning_rate(problem):
    model, _, loss_fn, train, _ = problem
    optimizer = type(problem[1])(model.parameters(), lr=1e6, momentum=0.0)
    before = None

    class Keep(Callback):
        def on_batch_end(self, trainer, step, logs):
            nonlocal before
            before = {k: v.data.copy() for k, v in trainer.model.state_dict().items()}

    trainer = Trainer(model, optimizer, loss_fn, callbacks=[Keep()], progress=False)
    with pytest.raises(
        FloatingPointError,
        match=r"loss became (nan|inf) at epoch 1, step \d+.*learning rate "
        r"\(1e\+06\) is probably too high.*e\.g\. 100000",
    ) as error:
        trainer.fit(train, epochs=3)
    assert error.value.epoch == 1 and error.value.step >= 2 and len(trainer.history) == 0
    for name, value in model.state_dict().items():  # the non-finite loss was never stepped on
        np.testing.assert_array_equal(value.data, before[name])


def test_metrics_against_hand_computed_values():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    target = np.array([1, 1, 0, 0])
    assert accuracy(scores, target) == 0.5
    assert top_k_accuracy(scores, target, 2) == 0.75  # sample 2: top-2 are {2, 1}, target 0 missed
    assert top_k_accuracy(mg.tensor(scores), mg.tensor(target), 3) == 1.0
    np.testing.assert_array_equal(confusion_matrix(scores, target), [[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix([0, 2], [2, 2], num_classes=3), [[0, 0, 0], [0, 0, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="k must be in 1..3"):
        top_k_accuracy(scores, target, 4)
    with pytest.raises(ValueError, match="class-index targets"):
        accuracy(scores, target[:3])


def test_predict_and_test_time_augmentation(tiny):
    mg.manual_seed(1)

    class Images:
        """Scores = a linear map of the flattened image: easy to compute by hand."""

        def __init__(self):
            self.w = mg.random.generator().standard_normal((16, 3)).astype(np.float32)

        def __call__(self, x):
            return mg.Tensor(x.data.reshape(len(x), -1) @ self.w)

    model = Images()
    x = mg.random.generator().random((5, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(predict(model, x, batch_size=2), x.reshape(5, -1) @ model.w, rtol=1e-6)
    loader = DataLoader(TensorDataset(x, np.zeros(5, np.int64)), batch_size=3)
    np.testing.assert_allclose(predict(model, loader), x.reshape(5, -1) @ model.w, rtol=1e-6)

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    expected = (softmax(x.reshape(5, -1) @ model.w) + softmax(x[..., ::-1].reshape(5, -1) @ model.w)) / 2
    np.testing.assert_allclose(predict_tta(model, x, flip=True), expected, rtol=1e-5)
    assert predict_tta(model, x, flip=True, shift=1, batch_size=2).shape == (5, 3)
