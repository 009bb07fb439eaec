"""Multi-crop views for DINO (and SwAV): 2 global crops plus N small local crops.

`MultiCropAugmentation` is DINO's `DataAugmentationDINO` as one batched,
serialisable object; `multi_crop_dataset` feeds it through
`multi_view_dataset`, so each batch is augmented once per crop, vectorised,
and every element is `((global_1, global_2, local_1, ..., local_N),)`: the
global crops (side `global_size`) first, then the local crops (side
`local_size`). Crops of one resolution have the same shape, so a model can run
each resolution group as one batch (`DINO` concatenates them).

Example:

```python
import numpy as np
from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset

images = np.random.rand(512, 32, 32, 3).astype("float32")
augmentation = MultiCropAugmentation(32, 16, num_local_crops=4,
                                     local_scale=(0.1, 0.4))
ds = multi_crop_dataset(images, augmentation, batch_size=64)
(crops,) = next(iter(ds))  # 2 × (64, 32, 32, 3), then 4 × (64, 16, 16, 3)
```
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.data import augment as aug
from keras_ssl.data.augment import SeedLike
from keras_ssl.data.views import ConfigurableAugmentation, multi_view_dataset

__all__ = ["MultiCropAugmentation", "multi_crop_dataset"]


@keras.saving.register_keras_serializable(package="keras_ssl")
class MultiCropAugmentation(ConfigurableAugmentation):
    """DINO's multi-crop augmentation, applied to a whole batch at once.

    "We construct a set V of different views. This set contains two global
    views, x1g and x2g and several local views of smaller resolution. [...]
    Global views at resolution 224² covering a large (for example greater
    than 50%) area of the original image, and local views of resolution 96²
    covering only small areas (for example less than 50%)." (Caron et al.,
    2021, section 3.1.) Per crop, as in the reference code
    (`DataAugmentationDINO`):

    1. `RandomResizedCrop(size, scale)`, bilinear: globals
       `(global_size, global_scale)`, locals `(local_size, local_scale)`;
    2. horizontal flip with probability 0.5;
    3. colour jitter `(0.4 s, 0.4 s, 0.2 s, 0.1 s)` with probability 0.8
       (`s = jitter_strength`; DINO: `s = 1`), then grayscale with
       probability `grayscale_p` (0.2);
    4. Gaussian blur: probability 1.0 on the first global crop, 0.1 on the
       second, 0.5 on local crops (`global_blur_p`, `local_blur_p`);
    5. solarization with probability `solarize_p` (0.2) on the second global
       crop only.

    Args:
        global_size: side of the global crops (paper: 224).
        local_size: side of the local crops (paper: 96).
        num_local_crops: N, the number of local crops (reference code: 8).
        global_scale: `(min, max)` area fraction of the global crops
            (paper: (0.4, 1)).
        local_scale: `(min, max)` area fraction of the local crops
            (paper: (0.05, 0.4)).
        crop_ratio: `(min, max)` aspect ratio of every crop.
        jitter_strength: colour jitter strength s, in [0, 5].
        grayscale_p: probability of grayscale, per crop.
        global_blur_p: blur probabilities of the two global crops.
        local_blur_p: blur probability of the local crops.
        solarize_p: solarization probability of the second global crop.

    Call arguments:
        images: batch `(B, H, W, 3)`, float in [0, 1] or uint8.
        seed: optional shape `[2]` stateless seed; `None` draws a fresh one.

    Returns (call): a tuple of `2 + N` crops, the global ones first.
    """

    def __init__(
        self,
        global_size: int = 224,
        local_size: int = 96,
        num_local_crops: int = 8,
        global_scale: Sequence[float] = (0.4, 1.0),
        local_scale: Sequence[float] = (0.05, 0.4),
        crop_ratio: Sequence[float] = (3 / 4, 4 / 3),
        jitter_strength: float = 1.0,
        grayscale_p: float = 0.2,
        global_blur_p: Sequence[float] = (1.0, 0.1),
        local_blur_p: float = 0.5,
        solarize_p: float = 0.2,
    ) -> None:
        aug._image_size(global_size)
        aug._image_size(local_size)
        self.global_size = int(global_size)
        self.local_size = int(local_size)
        if (
            not isinstance(num_local_crops, int)
            or isinstance(num_local_crops, bool)
            or num_local_crops < 0
        ):
            raise ValueError(
                f"`num_local_crops` must be an int >= 0, got {num_local_crops!r}."
            )
        self.num_local_crops = num_local_crops
        self.global_scale = aug._check_range(global_scale, "global_scale", 0.0, 1.0)
        self.local_scale = aug._check_range(local_scale, "local_scale", 0.0, 1.0)
        self.crop_ratio = aug._check_range(crop_ratio, "crop_ratio", 0.0, math.inf)
        if not 0.0 <= jitter_strength <= 5.0:
            raise ValueError(
                "`jitter_strength` must be in [0, 5] (the hue strength 0.1 * s "
                f"cannot exceed 0.5), got {jitter_strength}."
            )
        self.jitter_strength = float(jitter_strength)
        self.grayscale_p = aug._check_probability(grayscale_p, "grayscale_p")
        if len(global_blur_p) != 2:
            raise ValueError(
                "`global_blur_p` needs one probability per global crop (2), "
                f"got {global_blur_p!r}."
            )
        self.global_blur_p = tuple(
            aug._check_probability(p, "global_blur_p") for p in global_blur_p
        )
        self.local_blur_p = aug._check_probability(local_blur_p, "local_blur_p")
        self.solarize_p = aug._check_probability(solarize_p, "solarize_p")

    @property
    def num_crops(self) -> int:
        """2 global + N local crops."""
        return 2 + self.num_local_crops

    def _crop_settings(self, index: int) -> tuple[int, tuple, float, float]:
        """(size, scale, blur_p, solarize_p) of crop `index`."""
        if index < 2:
            solarize = self.solarize_p if index == 1 else 0.0
            return (
                self.global_size,
                self.global_scale,
                self.global_blur_p[index],
                solarize,
            )
        return self.local_size, self.local_scale, self.local_blur_p, 0.0

    @tf.autograph.experimental.do_not_convert
    def crop(self, images: tf.Tensor, index: int, seed: SeedLike = None) -> tf.Tensor:
        """Crop number `index` (0, 1: global; 2, ...: local) of a batch."""
        if not 0 <= index < self.num_crops:
            raise ValueError(
                f"crop `index` must be in [0, {self.num_crops}), got {index}."
            )
        images = tf.convert_to_tensor(images)
        if images.dtype.is_integer:
            images = tf.image.convert_image_dtype(images, tf.float32)
        size, scale, blur_p, solarize_p = self._crop_settings(index)
        seeds = aug._split(seed, 6)
        images = aug.random_resized_crop(
            images, size, scale, self.crop_ratio, seed=seeds[0]
        )
        images = aug.random_flip_left_right(images, 0.5, seed=seeds[1])
        if self.jitter_strength > 0:
            s = self.jitter_strength
            images = aug.color_jitter(
                images, 0.4 * s, 0.4 * s, 0.2 * s, 0.1 * s, p=0.8, seed=seeds[2]
            )
        if self.grayscale_p > 0:
            images = aug.random_grayscale(images, self.grayscale_p, seed=seeds[3])
        if blur_p > 0:
            images = aug.gaussian_blur(images, blur_p, seed=seeds[4])
        if solarize_p > 0:
            images = aug.random_solarize(images, solarize_p, seed=seeds[5])
        return images

    def view_functions(self) -> list:
        """One callable `(images, seed=None) -> crop` per crop, for
        `multi_view_dataset`."""
        return [
            functools.partial(self.crop, index=i) for i in range(self.num_crops)
        ]

    def __call__(self, images: tf.Tensor, seed: SeedLike = None) -> tuple:
        seeds = aug._split(seed, self.num_crops)
        return tuple(
            self.crop(images, i, seed=seeds[i]) for i in range(self.num_crops)
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "global_size": self.global_size,
            "local_size": self.local_size,
            "num_local_crops": self.num_local_crops,
            "global_scale": self.global_scale,
            "local_scale": self.local_scale,
            "crop_ratio": self.crop_ratio,
            "jitter_strength": self.jitter_strength,
            "grayscale_p": self.grayscale_p,
            "global_blur_p": self.global_blur_p,
            "local_blur_p": self.local_blur_p,
            "solarize_p": self.solarize_p,
        }


def multi_crop_dataset(
    images: np.ndarray | tf.data.Dataset,
    augmentation: MultiCropAugmentation | None = None,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A `tf.data` pipeline of multi-crop batches, `((g1, g2, l1, ..., lN),)`.

    `multi_view_dataset` with one view function per crop: it shuffles,
    batches first, augments each batch once per crop (vectorised, with its
    own stateless seed) and prefetches. See `multi_view_dataset` for the
    accepted `images` and the other arguments.

    Args:
        images: NumPy array `(N, H, W, 3)` or a dataset of single images.
        augmentation: a `MultiCropAugmentation` (default: DINO's, 224/96 px).
        batch_size, shuffle, seed, drop_remainder, repeat: as for
            `multi_view_dataset`.
    """
    augmentation = augmentation or MultiCropAugmentation()
    if not isinstance(augmentation, MultiCropAugmentation):
        raise ValueError(
            "`augmentation` must be a MultiCropAugmentation, got "
            f"{augmentation!r}."
        )
    return multi_view_dataset(
        images,
        augmentation.view_functions(),
        num_views=augmentation.num_crops,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
        repeat=repeat,
    )
