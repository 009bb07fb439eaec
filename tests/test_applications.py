"""applications/: every recipe is a valid config whose method builds."""

import dataclasses
import importlib.util
import pathlib

import numpy as np
import pytest

from keras_ssl.backbones import CIFARResNetBackbone, ViTBackbone
from keras_ssl.training import RECIPES, PretrainConfig, make_method

MASKED_IMAGE_MODELS = ("mae", "beit")

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
    assert paper.method == method
    images = None
    if method in MASKED_IMAGE_MODELS:
        assert paper.backbone == "vit_base16"
        # A small ViT with ViT-B's 16-px patches (a 4×4 grid).
        encoder = ViTBackbone(image_shape=(64, 64, 3), patch_size=16,
                              hidden_dim=16, num_layers=1, num_heads=2)
        images = np.random.default_rng(0).random((8, 64, 64, 3)).astype("float32")
        if "tokenizer_epochs" in paper.method_options:
            options = dict(paper.method_options, tokenizer_epochs=1)
            paper = dataclasses.replace(paper, method_options=options)
    else:
        assert paper.backbone == "resnet50"
        encoder = CIFARResNetBackbone((8,), (1,), image_shape=(None, None, 3))
    # The paper's method options are valid constructor arguments.
    model = make_method(paper, encoder, steps_per_epoch=10, images=images)
    assert type(model).__name__.lower().startswith(method)
