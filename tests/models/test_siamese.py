"""SimSiam, Barlow Twins and VICReg beyond the shared harness: their
options, checked before anything is built."""

import pytest

from harness import tiny_encoder
from keras_ssl.models import BarlowTwins, SimSiam, VICReg


def test_options_are_validated():
    with pytest.raises(ValueError, match="lambda_offdiag"):
        BarlowTwins(tiny_encoder(), lambda_offdiag=-1.0)
    with pytest.raises(ValueError, match="variance_weight"):
        VICReg(tiny_encoder(), variance_weight=-1.0)
    with pytest.raises(ValueError, match="MLPHead widths"):
        SimSiam(tiny_encoder(), prediction_hidden_dims=(0,)).build(
            ((None, 16, 16, 3), (None, 16, 16, 3)))


def test_heads_follow_the_papers():
    views = ((None, 16, 16, 3),) * 2
    simsiam = SimSiam(tiny_encoder(), projection_dim=32,
                      projection_hidden_dims=(32, 32), prediction_hidden_dims=(8,))
    simsiam.build(views)
    # Batch norm after every projector layer, the output's included; the
    # predictor is a bottleneck back to the projection width.
    assert simsiam.projector.output_batch_norm
    assert simsiam.predictor.hidden_dims == (8,)
    assert simsiam.predictor.output_dim == 32
    barlow = BarlowTwins(tiny_encoder(), projection_dim=32,
                         projection_hidden_dims=(32, 32))
    barlow.build(views)
    assert not barlow.projector.output_batch_norm
    assert barlow.projector.hidden_dims == (32, 32)
    assert BarlowTwins(tiny_encoder()).projection_dim == 8192  # the paper's
    assert VICReg(tiny_encoder()).get_config()["variance_weight"] == 25.0
