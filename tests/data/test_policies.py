"""The papers' augmentation policies (`keras_ssl.data.policies`)."""

import numpy as np

from keras_ssl.data import (
    MultiCropAugmentation,
    SimCLRAugmentation,
    byol_augmentations,
    dino_multicrop,
    mae_augmentation,
    multi_view_dataset,
)


def test_byol_augmentations_are_asymmetric():
    t1, t2 = byol_augmentations(16)
    assert isinstance(t1, SimCLRAugmentation) and isinstance(t2, SimCLRAugmentation)
    assert (t1.blur_p, t2.blur_p) == (1.0, 0.1)
    assert (t1.solarize_p, t2.solarize_p) == (0.0, 0.2)
    assert t1.grayscale_p == t2.grayscale_p == 0.2
    assert t1.crop_scale == t2.crop_scale == (0.08, 1.0)
    small = byol_augmentations(16, crop_scale=(0.2, 1.0), blur_p=(0.0, 0.0),
                               grayscale_p=0.5, jitter_strength=1.0)
    assert [t.blur_p for t in small] == [0.0, 0.0]
    assert [t.grayscale_p for t in small] == [0.5, 0.5]
    assert [t.crop_scale for t in small] == [(0.2, 1.0)] * 2


def test_mae_augmentation_only_crops_and_flips():
    t = mae_augmentation(16)
    assert isinstance(t, SimCLRAugmentation)
    assert t.crop_scale == (0.2, 1.0) and t.flip
    assert t.jitter_p == 0.0 and t.grayscale_p == 0.0
    assert t.blur_p == 0.0 and t.solarize_p == 0.0
    images = np.random.default_rng(0).random((8, 32, 32, 3)).astype("float32")
    (views,) = next(iter(multi_view_dataset(images, t, num_views=1, batch_size=4, seed=0)))
    assert [tuple(v.shape) for v in views] == [(4, 16, 16, 3)]


def test_dino_multicrop_passes_its_values():
    augmentation = dino_multicrop(16, 8, 3, (0.4, 1.0), (0.1, 0.4))
    assert isinstance(augmentation, MultiCropAugmentation)
    assert (augmentation.global_size, augmentation.local_size) == (16, 8)
    assert augmentation.num_local_crops == 3
    assert augmentation.global_scale == (0.4, 1.0)
    assert augmentation.local_scale == (0.1, 0.4)
    assert (augmentation.jitter_strength, augmentation.grayscale_p) == (1.0, 0.2)
