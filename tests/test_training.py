"""The vision family of the recipe engine (keras_ssl.training)."""

import keras
import numpy as np
import pytest

from keras_ssl.data import load_image_data
from keras_ssl.optimizers import LARS
from keras_ssl.training import (
    BACKBONES,
    PretrainConfig,
    TimeBudget,
    build_backbone,
    make_vision_optimizer,
    raw_pixel_scores,
)
from keras_ssl.callbacks import StopAtStep, fit_schedule


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "simclrv2"}, "unknown vision method"),
        ({"backbone": "vgg"}, "unknown backbone"),
        ({"optimizer": "adagrad"}, "unknown optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"method": "dino", "temperature": 0.1}, "simclr, moco and swav"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"fine_tune_epochs": -1}, "fine_tune_epochs"),
        ({"beta_2": 1.0}, "beta_2"),
        ({"steps": 0}, "steps"),
        ({"crop_scale": (0.5, 0.2)}, "crop_scale"),
        ({"grayscale_p": 1.5}, "grayscale_p"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**kwargs)


def test_fields_left_at_none_take_the_recipes_defaults():
    simclr = PretrainConfig()
    assert (simclr.backbone, simclr.epochs, simclr.batch_size) == (
        "cifar_resnet_tiny", 100, 128)
    assert (simclr.learning_rate, simclr.beta_2, simclr.fine_tune_epochs) == (
        2e-3, 0.999, 0)
    mae = PretrainConfig(method="mae")
    assert mae.backbone == "vit_tiny" and mae.beta_2 == 0.95
    assert mae.weight_decay == 0.05 and mae.fine_tune_epochs > 0
    # What the user sets wins over the recipe.
    assert PretrainConfig(method="mae", backbone="vit_base16",
                          fine_tune_epochs=0).fine_tune_epochs == 0


def test_every_backbone_builds_and_unknown_fails():
    # Feature maps and tokens out, as keras-hub's backbones.
    for name, rank in (("cifar_resnet_tiny", 4), ("cifar_resnet_small", 4),
                       ("vit_tiny", 3)):
        assert len(build_backbone(name, (16, 16, 3)).output.shape) == rank
    vit = build_backbone("vit_tiny", (32, 32, 3))
    assert vit.patch_size == 4 and tuple(vit.grid) == (8, 8)
    assert {"resnet18", "resnet50", "cifar_resnet18"} <= set(BACKBONES)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg", (16, 16, 3))


@pytest.mark.parametrize(
    "name,cls",
    [("adamw", keras.optimizers.AdamW), ("lars", LARS), ("sgd", keras.optimizers.SGD)],
)
def test_optimizers_warm_up_then_decay(name, cls):
    config = PretrainConfig(optimizer=name, epochs=10, warmup_epochs=2,
                            learning_rate=0.4)
    optimizer = make_vision_optimizer(config, steps_per_epoch=10)
    assert isinstance(optimizer, cls)
    lr = optimizer._learning_rate  # the schedule itself, not its current value
    values = [float(keras.ops.convert_to_numpy(lr(step))) for step in (0, 20, 100)]
    assert values[0] == 0.0
    np.testing.assert_allclose(values[1], 0.4, rtol=1e-6)
    assert values[2] < 1e-6


def test_raw_pixel_scores_are_far_above_chance_and_far_below_perfect():
    data = load_image_data("digits")
    scores = raw_pixel_scores(data)
    assert 0.15 < scores["knn_accuracy"] < 0.6
    assert 0.1 < scores["linear_probe_accuracy"] < 0.9


def test_time_budget_stops_at_the_end_of_an_epoch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    budget = TimeBudget(seconds=0.0)
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=5,
                        verbose=0, callbacks=[budget])
    assert len(history.history["loss"]) == 1 and budget.stopped_epoch == 1


def test_steps_replace_epochs_in_the_schedule():
    config = PretrainConfig(epochs=10, steps=25, warmup_epochs=0, learning_rate=0.4)
    lr = make_vision_optimizer(config, steps_per_epoch=10)._learning_rate
    assert float(keras.ops.convert_to_numpy(lr(25))) < 1e-6  # ends at step 25
    assert fit_schedule(25, 10)[:2] == (3, 10)
    assert fit_schedule(20, 10) == (2, 10, [])
    assert fit_schedule(4, 100)[:2] == (1, 4)


def test_fit_runs_exactly_the_asked_steps():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    epochs, per_epoch, stop = fit_schedule(7, 3)
    assert [type(c) for c in stop] == [StopAtStep]
    x = np.zeros((30, 2))
    model.fit(x, np.zeros((30, 1)), batch_size=1, epochs=epochs,
              steps_per_epoch=per_epoch, verbose=0, callbacks=stop)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 7


def test_stop_at_step_counts_from_the_restored_step():
    """A run resumed at optimizer step 5 of 7 trains 2 more steps."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(5)
    epochs, per_epoch, stop = fit_schedule(7, 3)
    model.fit(np.zeros((30, 2)), np.zeros((30, 1)), batch_size=1, epochs=epochs,
              steps_per_epoch=per_epoch, verbose=0, callbacks=stop)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 7
