"""Multi-view input pipelines for contrastive and self-distillation methods.

`SimCLRAugmentation` is SimCLR's augmentation policy as one batched,
serialisable callable; `multi_view_dataset` turns a set of images into a
`tf.data.Dataset` whose elements are `((view_1, ..., view_n),)`, ready for
`model.fit` under any Keras backend.

Example:

```python
import numpy as np
from keras_ssl.data import SimCLRAugmentation, multi_view_dataset

images = np.random.rand(1024, 32, 32, 3).astype("float32")
ds = multi_view_dataset(images, SimCLRAugmentation(32), batch_size=256)
(view_1, view_2), = next(iter(ds))  # each (256, 32, 32, 3)
```
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_ssl.data import augment as aug
from keras_ssl.data.augment import SeedLike
from keras_ssl.data.image_files import ImageSource, _endless_indices

__all__ = [
    "SimCLRAugmentation",
    "measure_pipeline_throughput",
    "multi_view_dataset",
]

# Shuffle buffer for `tf.data.Dataset` inputs (NumPy inputs are shuffled
# completely, through their indices).
_DATASET_SHUFFLE_BUFFER = 10_000


class ConfigurableAugmentation:
    """Mixin of augmentation policies: `from_config` and a readable repr.

    Subclasses define `get_config()` mirroring their constructor.
    """

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_ssl")
class SimCLRAugmentation(ConfigurableAugmentation):
    """SimCLR's data augmentation, applied to a whole batch at once.

    SimCLR (Chen et al., 2020, section 2.1): "In this work, we sequentially
    apply three simple augmentations: random cropping followed by resize back
    to the original size, random color distortions, and random Gaussian
    blur." In detail (appendix A, torchvision terms), each image goes through:

    1. `RandomResizedCrop(image_size, scale=crop_scale, ratio=crop_ratio)`,
       bilinear;
    2. `RandomHorizontalFlip(0.5)` (if `flip`);
    3. `RandomApply([ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)], p=jitter_p)` with
       `s = jitter_strength`, the four adjustments in random order per image;
    4. `RandomGrayscale(p=grayscale_p)`;
    5. `GaussianBlur` with probability `blur_p`, `sigma ~ U[0.1, 2.0]`,
       kernel side about 10% of `image_size`;
    6. solarization with probability `solarize_p` (not in SimCLR; BYOL and
       DINO use it on one of their views).

    Defaults. The defaults are the paper's CIFAR-10 setting (appendix B.9),
    since this library's reference experiments use 32x32 images: colour
    strength `s = 0.5` and no Gaussian blur, which the paper leaves out for
    CIFAR-10 (at 32 pixels, a kernel of 10% of the side is only 3 pixels
    wide). For ImageNet-size images use the paper's ImageNet setting,
    `jitter_strength=1.0, blur_p=0.5`. Every image of the batch draws its
    own random parameters, and so does every call.

    Args:
        image_size: Output side in pixels, an int or `(height, width)`.
        crop_scale: `(min, max)` fraction of the image area kept by the crop,
            in `(0, 1]`.
        crop_ratio: `(min, max)` aspect ratio (width / height) of the crop.
        flip: Whether to flip horizontally with probability 0.5.
        jitter_strength: Colour distortion strength `s`, in `[0, 2.5]`.
        jitter_p: Probability of colour jitter.
        grayscale_p: Probability of conversion to grayscale.
        blur_p: Probability of Gaussian blur.
        solarize_p: Probability of solarization (threshold 0.5).

    Call arguments:
        images: float32 batch `(batch, height, width, 3)` in `[0, 1]`; integer
            (e.g. uint8) images are rescaled to `[0, 1]` first.
        seed: Optional shape `[2]` stateless seed (see
            `keras_ssl.data.augment`); `None` draws a fresh one.

    Example:

    ```python
    import tensorflow as tf

    augmentation = SimCLRAugmentation(32)
    images = tf.random.uniform((8, 32, 32, 3))
    view_1, view_2 = augmentation(images), augmentation(images)
    ```
    """

    def __init__(
        self,
        image_size: int | Sequence[int],
        crop_scale: Sequence[float] = (0.08, 1.0),
        crop_ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip: bool = True,
        jitter_strength: float = 0.5,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.0,
        solarize_p: float = 0.0,
    ) -> None:
        height, width = aug._image_size(image_size)
        self.image_size = (height, width) if _is_pair(image_size) else height
        self.crop_scale = aug._check_range(crop_scale, "crop_scale", 0.0, 1.0)
        self.crop_ratio = aug._check_range(crop_ratio, "crop_ratio", 0.0, math.inf)
        self.flip = bool(flip)
        if not 0.0 <= jitter_strength <= 2.5:
            raise ValueError(
                "`jitter_strength` must be in [0, 2.5] (the hue strength "
                f"0.2 * s cannot exceed 0.5), got {jitter_strength}."
            )
        self.jitter_strength = float(jitter_strength)
        self.jitter_p = aug._check_probability(jitter_p, "jitter_p")
        self.grayscale_p = aug._check_probability(grayscale_p, "grayscale_p")
        self.blur_p = aug._check_probability(blur_p, "blur_p")
        self.solarize_p = aug._check_probability(solarize_p, "solarize_p")

    @tf.autograph.experimental.do_not_convert
    def __call__(self, images: tf.Tensor, seed: SeedLike = None) -> tf.Tensor:
        images = tf.convert_to_tensor(images)
        if images.dtype.is_integer:
            images = tf.image.convert_image_dtype(images, tf.float32)
        seeds = tf.random.split(aug._resolve_seed(seed), 6)
        images = aug.random_resized_crop(
            images,
            self.image_size,
            self.crop_scale,
            self.crop_ratio,
            seed=seeds[0],
        )
        if self.flip:
            images = aug.random_flip_left_right(images, 0.5, seed=seeds[1])
        if self.jitter_p > 0 and self.jitter_strength > 0:
            s = self.jitter_strength
            images = aug.color_jitter(
                images,
                brightness=0.8 * s,
                contrast=0.8 * s,
                saturation=0.8 * s,
                hue=0.2 * s,
                p=self.jitter_p,
                seed=seeds[2],
            )
        if self.grayscale_p > 0:
            images = aug.random_grayscale(images, self.grayscale_p, seed=seeds[3])
        if self.blur_p > 0:
            images = aug.gaussian_blur(images, self.blur_p, seed=seeds[4])
        if self.solarize_p > 0:
            images = aug.random_solarize(images, self.solarize_p, seed=seeds[5])
        return images

    def get_config(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "crop_scale": self.crop_scale,
            "crop_ratio": self.crop_ratio,
            "flip": self.flip,
            "jitter_strength": self.jitter_strength,
            "jitter_p": self.jitter_p,
            "grayscale_p": self.grayscale_p,
            "blur_p": self.blur_p,
            "solarize_p": self.solarize_p,
        }


def _is_pair(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _accepts_seed(fn: Callable) -> bool:
    """Whether `fn` has an explicit `seed` parameter."""
    try:
        return "seed" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _view_functions(
    augment: Callable | Sequence[Callable], num_views: int
) -> list[Callable]:
    if not _is_positive_int(num_views):
        raise ValueError(f"`num_views` must be an int >= 1, got {num_views!r}.")
    if callable(augment):
        return [augment] * num_views
    functions = list(augment)
    if len(functions) != num_views:
        raise ValueError(
            f"`augment` is a list of {len(functions)} callables but "
            f"`num_views={num_views}`: pass one callable, or one per view."
        )
    for fn in functions:
        if not callable(fn):
            raise ValueError(
                f"Every item of `augment` must be callable, got {fn!r}."
            )
    return functions


def _to_float(images: tf.Tensor) -> tf.Tensor:
    if images.dtype.is_integer:
        return tf.image.convert_image_dtype(images, tf.float32)
    return tf.cast(images, tf.float32)


def _check_image_shape(shape: Sequence[int | None], what: str) -> None:
    if len(shape) != 3 or shape[-1] not in (3, None):
        raise ValueError(
            f"{what} must be RGB images of shape (height, width, 3), got "
            f"shape {tuple(shape)}."
        )


def multi_view_dataset(
    images: np.ndarray | tf.data.Dataset | ImageSource,
    augment: Callable | Sequence[Callable],
    num_views: int = 2,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = True,
    repeat: bool = False,
    start_batch: int = 0,
) -> tf.data.Dataset:
    """Builds a `tf.data` pipeline of batches of independently augmented views.

    The pipeline shuffles, batches *first*, then augments whole batches with
    the vectorised functions (`num_parallel_calls=AUTOTUNE`), and prefetches.
    Each element is `((view_1, ..., view_n),)`: a 1-tuple holding the tuple
    of views, so that `model.fit(dataset)` receives `x = (view_1, ...)` and no
    targets. Every view is an independent random draw.

    Randomness: each batch gets a fresh stateless seed from
    `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, split
    into one seed per view. A callable with a `seed` parameter (like
    `SimCLRAugmentation` and the functions of `keras_ssl.data.augment`) is
    called as `augment(images, seed=view_seed)`; other callables as
    `augment(images)` and must then draw their own randomness. With `seed`
    set, the whole stream of shuffles and augmentations is reproducible, and
    still differs from one epoch (one iteration over the dataset) to the next.

    Args:
        images: NumPy array `(N, H, W, 3)`, float in `[0, 1]` or uint8 (kept as
            uint8 in memory and rescaled per batch), or a `tf.data.Dataset`
            of single images `(H, W, 3)`, float in `[0, 1]` or uint8. NumPy
            inputs are shuffled completely (by index); datasets through a
            buffer of `min(len, 10000)` images. An array is embedded in the
            `tf.data` graph, which TensorFlow limits to 2 GB: pass larger
            data as a dataset, or as an `ImageSource`
            (`keras_ssl.data.image_files`): image files or a TFDS split,
            read and decoded one image at a time inside the pipeline
            (memory does not grow with their number), shuffled by index
            (files) or through a buffer of encoded records (TFDS).
        augment: One batched callable for all views, or a list of
            `num_views` callables (asymmetric views, e.g. BYOL, DINO).
        num_views: Number of views per image.
        batch_size: Images per batch.
        shuffle: Whether to shuffle, differently at each epoch.
        seed: Optional int seed for the shuffle and the augmentations.
        drop_remainder: Whether to drop the last incomplete batch (giving
            batches of static size).
        repeat: Whether to repeat forever (then give `steps_per_epoch` to
            `fit`); batches then run across epoch boundaries, and the stream
            is the same from every new iterator (a resumed run skips into
            it exactly). `seed=None` then draws one seed for good.
        start_batch: With `repeat`, the first batch, counted in the endless
            stream: `start_batch=k` gives what `.skip(k)` gives, without
            loading or augmenting the images of the skipped batches (for
            arrays and `ImageSource`s). The returned dataset's
            `from_batch(k)` builds it; a resumed `fit` calls it.

    Returns:
        A `tf.data.Dataset` of `((view_1, ..., view_n),)`, each view float32
        `(batch_size, out_height, out_width, 3)`.

    Raises:
        ValueError: if `num_views < 1`, `augment` has the wrong length,
            `batch_size < 1`, or is larger than the dataset while
            `drop_remainder` is set and `repeat` is not (no batch at all),
            or the images are not RGB images of the expected rank, dtype or
            range.

    Example:

    ```python
    images = np.random.randint(0, 256, (1024, 32, 32, 3), dtype="uint8")
    ds = multi_view_dataset(images, SimCLRAugmentation(32), batch_size=128)
    # model.fit(ds, epochs=...)
    ```
    """
    functions = _view_functions(augment, num_views)
    with_seed = [_accepts_seed(fn) for fn in functions]
    if not _is_positive_int(batch_size):
        raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}.")

    if repeat and seed is None:
        # One seed for good: the stream must be the same from every iterator.
        seed = int(np.random.randint(1 << 30))
    rebuild = dict(augment=augment, num_views=num_views, batch_size=batch_size,
                   shuffle=shuffle, seed=seed, drop_remainder=drop_remainder,
                   repeat=repeat)
    element_start = int(start_batch) * int(batch_size) if repeat else 0
    if start_batch and not repeat:
        raise ValueError("`start_batch` needs `repeat=True` (an endless stream).")
    if isinstance(images, ImageSource):
        size = len(images)
        source = images.dataset(shuffle=shuffle, seed=seed,
                                start=element_start, repeat=repeat)
        indices = None

        def load(batch: tf.Tensor) -> tf.Tensor:
            return _to_float(batch)

    elif isinstance(images, tf.data.Dataset):
        spec = images.element_spec
        if not isinstance(spec, tf.TensorSpec):
            raise ValueError(
                "A dataset passed as `images` must yield single image tensors, "
                f"got element_spec {spec}."
            )
        _check_image_shape(spec.shape.as_list(), "Dataset elements")
        if not (spec.dtype.is_floating or spec.dtype == tf.uint8):
            raise ValueError(
                f"Images must be float or uint8, got {spec.dtype.name}."
            )
        cardinality = int(images.cardinality())
        size = cardinality if cardinality >= 0 else None
        base = images
        buffer = min(size, _DATASET_SHUFFLE_BUFFER) if size else _DATASET_SHUFFLE_BUFFER
        indices = None

        def load(batch: tf.Tensor) -> tf.Tensor:
            return _to_float(batch)

    else:
        array = np.asarray(images)
        if array.ndim != 4:
            raise ValueError(
                "`images` must be an array of shape (N, height, width, 3), got "
                f"shape {array.shape}."
            )
        _check_image_shape(array.shape[1:], "`images`")
        if len(array) == 0:
            raise ValueError("`images` is empty.")
        if array.dtype == np.uint8:
            data = tf.constant(array)
        elif np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float32, copy=False)
            if array.size and (array.min() < 0.0 or array.max() > 1.0):
                raise ValueError(
                    "Float images must be in [0, 1], got values in "
                    f"[{array.min()}, {array.max()}]: divide by 255, or pass "
                    "uint8 images."
                )
            data = tf.constant(array)
        else:
            raise ValueError(
                f"`images` must be float or uint8, got {array.dtype}."
            )
        size = len(array)
        base = tf.data.Dataset.range(size)
        buffer = size
        indices = size  # passes are permutations of the indices

        def load(indices: tf.Tensor) -> tf.Tensor:
            return _to_float(tf.gather(data, indices))

    if isinstance(images, ImageSource):
        pass  # the source shuffles, repeats and starts itself
    elif repeat and indices is not None:
        source = _endless_indices(indices, shuffle, seed, element_start)
    elif repeat:
        source = _passes(base, buffer, seed, shuffle)
        source = source.skip(element_start) if element_start else source
    elif shuffle:
        source = base.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    else:
        source = base
    if drop_remainder and not repeat and size is not None and batch_size > size:
        raise ValueError(
            f"`batch_size={batch_size}` is larger than the dataset ({size} "
            "images) and `drop_remainder=True`: the dataset would have no "
            "batch. Lower `batch_size` or set `drop_remainder=False`."
        )
    batches = source.batch(batch_size, drop_remainder=drop_remainder)
    # A repeated stream is the same from every new iterator, so a resumed run
    # skips into exactly the batches an uninterrupted run reads next; a finite
    # one draws anew at each pass (each epoch of `fit`).
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=not repeat)

    def make_views(
        batch: tf.Tensor, batch_seed: tf.Tensor
    ) -> tuple[tuple[tf.Tensor, ...]]:
        batch = load(batch)
        view_seeds = tf.random.split(batch_seed, num_views)
        views = tuple(
            fn(batch, seed=view_seeds[i]) if takes_seed else fn(batch)
            for i, (fn, takes_seed) in enumerate(zip(functions, with_seed))
        )
        return (views,)

    seeds = seeds.batch(2)
    if start_batch:
        seeds = seeds.skip(int(start_batch))
    dataset = tf.data.Dataset.zip(batches, seeds)
    dataset = dataset.map(make_views, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    if repeat and (indices is not None or isinstance(images, ImageSource)):
        dataset.from_batch = lambda k: multi_view_dataset(
            images, start_batch=int(start_batch) + int(k), **rebuild)
    return dataset


def _passes(base, buffer, seed, shuffle):
    """Endless passes over the dataset `base`, the same stream from every new
    iterator: a shuffle buffer runs over the repeated stream with a fixed
    seed."""
    if not shuffle:
        return base.repeat()
    return base.repeat().shuffle(buffer, seed=seed, reshuffle_each_iteration=False)


def measure_pipeline_throughput(
    images: np.ndarray | tf.data.Dataset,
    augment: Callable | Sequence[Callable],
    batch_size: int = 256,
    num_batches: int = 20,
    num_views: int = 2,
    warmup_batches: int = 5,
) -> float:
    """Measures how many source images per second `multi_view_dataset` yields.

    Builds a repeating `multi_view_dataset`, discards `warmup_batches` (graph
    tracing, buffer filling), then times `num_batches` batches. Each counted
    image comes with `num_views` augmented views.

    Args:
        images: As for `multi_view_dataset`.
        augment: As for `multi_view_dataset`.
        batch_size: Images per batch.
        num_batches: Batches timed.
        num_views: Views per image.
        warmup_batches: Batches drawn before timing starts.

    Returns:
        Images per second (multiply by `num_views` for views per second).

    Example:

    ```python
    images = np.random.rand(2048, 32, 32, 3).astype("float32")
    augmentation = SimCLRAugmentation(32)
    rate = measure_pipeline_throughput(images, augmentation, num_batches=10)
    ```
    """
    if num_batches < 1:
        raise ValueError(f"`num_batches` must be >= 1, got {num_batches}.")
    dataset = multi_view_dataset(
        images, augment, num_views=num_views, batch_size=batch_size, repeat=True
    )
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    return num_batches * batch_size / elapsed if elapsed > 0 else math.inf
