"""applications/: every recipe is a valid config whose method builds."""

import importlib.util
import pathlib

import pytest

from keras_ssl.backbones import CIFARResNetBackbone
from keras_ssl.training import RECIPES, PretrainConfig, make_method

APPLICATIONS = pathlib.Path(__file__).parents[1] / "applications"


def _load(method):
    spec = importlib.util.spec_from_file_location(
        f"application_{method}", APPLICATIONS / f"{method}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", list(RECIPES))
def test_every_method_has_a_digits_and_a_paper_recipe(method):
    recipes = _load(method).RECIPES
    assert set(recipes) == {"digits", "imagenet"}
    digits = recipes["digits"]()
    assert digits == PretrainConfig(method=method)
    paper = recipes["imagenet"]()
    assert paper.method == method and paper.backbone == "resnet50"
    # The paper's method options are valid constructor arguments.
    encoder = CIFARResNetBackbone((8,), (1,), image_shape=(None, None, 3))
    model = make_method(paper, encoder, steps_per_epoch=10)
    assert type(model).__name__.lower().startswith(method)
