"""Folders of generated image files: local data for the folder loaders, the
tests and the streaming benchmarks (nothing is downloaded).

Each image is a smooth random scene (a colour gradient, a few ellipses and
some noise), so it compresses like a photograph, not like noise. With
`num_classes`, class `c`'s scenes lean towards one hue, which a
representation can pick up (and raw pixels can too).

Example:

```python
from keras_ssl.datasets.image_folder import write_image_folder
write_image_folder("/tmp/photos", count=100, size=224)  # 100 flat JPEGs
```
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

__all__ = ["write_image_folder"]


def _scene(rng, size, hue):
    """One uint8 RGB `(size, size, 3)` scene."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0, 1, 3) * 0.5 + 0.25
    if hue is not None:
        base = 0.3 * base + 0.7 * hue
    slope = rng.normal(0, 0.3, (2, 3))
    image = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    for _ in range(rng.integers(2, 5)):
        cy, cx, ry, rx = rng.uniform(0.1, 0.9, 2).tolist() + rng.uniform(0.05, 0.3, 2).tolist()
        inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        image[inside] = rng.uniform(0, 1, 3)
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_image_folder(root, count, size=224, num_classes=None, formats=("jpg",),
                       seed=0, nested=False, quality=90):
    """Writes `count` generated images under `root`; returns their paths.

    Args:
        root: the folder (created).
        count: how many images.
        size: their side in pixels (an int, or `(height, width)`).
        num_classes: None for a flat (or nested) unlabelled folder; else the
            images go to `root/class_<c>/`, `count // num_classes` each.
        formats: file formats, cycled over the images (`"jpg"`, `"png"`,
            `"webp"`, `"bmp"`, `"gif"`).
        seed: the scenes' seed.
        nested: unlabelled images spread over sub-folders `part_<k>/`
            (100 per folder).
        quality: JPEG/WebP quality.

    Images already there (same name) are kept, so a benchmark can grow a
    folder without rewriting it.
    """
    from PIL import Image

    root = pathlib.Path(root)
    height, width = (size, size) if np.ndim(size) == 0 else size
    rng = np.random.default_rng(seed)
    hues = rng.uniform(0, 1, (num_classes, 3)) if num_classes else None
    paths = []
    for i in range(int(count)):
        label = i % num_classes if num_classes else None
        if num_classes:
            folder = root / f"class_{label}"
        elif nested:
            folder = root / f"part_{i // 100}"
        else:
            folder = root
        suffix = formats[i % len(formats)]
        path = folder / f"image_{i:07d}.{suffix}"
        paths.append(str(path))
        if path.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        image_rng = np.random.default_rng([seed, i])
        scene = _scene(image_rng, max(height, width), None if hues is None else hues[label])
        image = Image.fromarray(scene[:height, :width])
        options = {"quality": quality} if suffix in ("jpg", "webp") else {}
        tmp = str(path) + ".tmp"
        image.save(tmp, format={"jpg": "JPEG"}.get(suffix, suffix.upper()), **options)
        os.replace(tmp, path)
    return paths
