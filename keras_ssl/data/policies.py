"""The augmentation policies of the papers, ready for the input pipelines.

- `byol_augmentations`: BYOL's two asymmetric views, for `multi_view_dataset`;
- `mae_augmentation`: MAE's crop-and-flip, for
  `multi_view_dataset(num_views=1)` (BEiT and its tokenizer use it too);
- `dino_multicrop`: a DINO `MultiCropAugmentation`, for `multi_crop_dataset`.

Example:

```python
from keras_ssl.data import byol_augmentations, load_image_data, multi_view_dataset

data = load_image_data("digits")
views = multi_view_dataset(data.x_unlabeled, byol_augmentations(16),
                           batch_size=128)
```
"""

from keras_ssl.data.multicrop import MultiCropAugmentation
from keras_ssl.data.views import SimCLRAugmentation

__all__ = ["byol_augmentations", "dino_multicrop", "mae_augmentation"]


def byol_augmentations(
    image_size, crop_scale=(0.08, 1.0), blur_p=(1.0, 0.1), **kwargs
):
    """BYOL's two asymmetric augmentations, for `multi_view_dataset`.

    BYOL (appendix B, table 6) uses SimCLR's augmentations with a different
    blur and solarization probability per view: Gaussian blur 1.0 / 0.1 and
    solarization 0.0 / 0.2 (colour jitter 0.8, grayscale 0.2 on both).

    Args:
        image_size: output side of the views.
        crop_scale: `(min, max)` area fraction of the random resized crop.
        blur_p: blur probability of each view. The paper's σ of 0.1–2 px is
            for 224-px images; on tiny images it wipes out the content, so
            small-image recipes pass `(0.0, 0.0)`.
        **kwargs: other `SimCLRAugmentation` arguments, for both views.

    Returns:
        A list `[t, t']` of two `SimCLRAugmentation`s.
    """
    kwargs.setdefault("grayscale_p", 0.2)
    return [
        SimCLRAugmentation(
            image_size, crop_scale=crop_scale, blur_p=blur_p[0],
            solarize_p=0.0, **kwargs,
        ),
        SimCLRAugmentation(
            image_size, crop_scale=crop_scale, blur_p=blur_p[1],
            solarize_p=0.2, **kwargs,
        ),
    ]


def mae_augmentation(image_size, crop_scale=(0.2, 1.0)):
    """MAE's pre-training augmentation, for `multi_view_dataset(num_views=1)`.

    "MAE works well using cropping-only augmentation, either fixed-size or
    random-size (both having random horizontal flipping)": a random resized
    crop of 20–100% of the area and a horizontal flip (MAE's code resamples
    bicubically; ours bilinearly), no colour changes.
    """
    return SimCLRAugmentation(
        image_size, crop_scale=crop_scale, jitter_p=0.0, grayscale_p=0.0
    )


def dino_multicrop(global_size, local_size, num_local_crops, global_scale,
                   local_scale, jitter_strength=1.0, grayscale_p=0.2):
    """A DINO multi-crop augmentation, for `multi_crop_dataset`.

    2 global crops of `global_size` px covering `global_scale` of the area
    and `num_local_crops` local crops of `local_size` px covering
    `local_scale`, with colour jitter of strength `jitter_strength` and
    grayscale with probability `grayscale_p` (DINO: 1 and 0.2); blur and
    solarization as in DINO's `DataAugmentationDINO` (see
    `MultiCropAugmentation`).

    Returns:
        A `MultiCropAugmentation`.
    """
    return MultiCropAugmentation(
        global_size=int(global_size),
        local_size=int(local_size),
        num_local_crops=int(num_local_crops),
        global_scale=global_scale,
        local_scale=local_scale,
        jitter_strength=jitter_strength,
        grayscale_p=grayscale_p,
    )
