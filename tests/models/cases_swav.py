"""SwAV in the shared harness: DINO's crops (2 global of 16 px, 2 local of
8 px), a queue that starts at step 2 and fills during the harness's fit
(2 batches of 32: pushed at steps 2 and 3, used from step 4), prototypes
frozen for the first 2 steps."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from harness import MethodCase  # noqa: E402
from keras_ssl.data.multicrop import multi_crop_dataset  # noqa: E402
from keras_ssl.models.swav import SwAV  # noqa: E402


def _dino():
    """The DINO case's module, whose crops SwAV shares; imported when used:
    importing it here would be circular (harness → cases_dino → harness's
    case discovery → this module → cases_dino, half initialised)."""
    import cases_dino

    return cases_dino


def tiny_swav(**kwargs):
    config = dict(
        num_prototypes=16,
        projection_dim=8,
        projection_hidden_dims=(16,),
        num_local_crops=_dino().NUM_LOCAL_CROPS,
        queue_size=64,
        queue_start_step=2,
        freeze_prototypes_steps=2,
    )
    config.update(kwargs)
    return SwAV(_dino().free_size_encoder(), **config)


def fixed_crops(images):
    return _dino().fixed_crops(images)


def bad_crops():
    # SwAV's messages match the patterns of DINO's.
    return _dino().bad_crops()


CASE = MethodCase(
    name="swav",
    build_model=tiny_swav,
    make_dataset=lambda images, batch_size: multi_crop_dataset(
        images, _dino().tiny_augmentation(), batch_size=batch_size, seed=0,
        repeat=True,
    ),
    fixed_inputs=fixed_crops,
    bad_inputs=bad_crops,
    metrics=("code_entropy", "prototype_usage"),
)
