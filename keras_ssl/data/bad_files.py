"""What the loaders do with corrupt inputs: raise naming the file, or skip and count.

Every file-based loader (`load_image_data`, `load_image_text_data`) takes
`on_bad_file`:

* `"raise"` (the default): the first undecodable image (garbage bytes, a
  zero-byte or truncated file), empty or non-UTF-8 caption file, or TFDS
  example whose image fails to decode raises a one-line `ValueError` that
  names the file (or the TFDS example id) and the reason, and says how to
  skip such files instead;
* `"skip"`: such inputs are left out; the returned data's `skipped` lists
  `(path, reason)` for each, a warning gives their count and the first few
  names, and a `ValueError` says so if nothing was left.

Decoding happens here, eagerly and one file at a time for folders, so no raw
`tf.errors.InvalidArgumentError` from inside `tf.data` (or a PIL stack trace)
reaches the caller. TFDS images are decoded inside `tf.data` (fast), with the
failing examples dropped there and then named in a second, eager pass.
"""

from __future__ import annotations

import pathlib
import re
import warnings
from typing import Any, Callable

import numpy as np

#: The values `on_bad_file` accepts.
ON_BAD_FILE = ("raise", "skip")
#: How many skipped names a warning or error lists.
_SHOWN = 5
_HINT = (
    "pass on_bad_file='skip' (keras-ssl: --skip-bad-files) to skip such files and count them"
)


class BadFile(Exception):
    """Raised by the decoders here with the reason a file is unusable."""


def check_on_bad_file(on_bad_file: Any) -> str:
    """`on_bad_file`, checked to be one of `ON_BAD_FILE`."""
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(
            f"on_bad_file must be one of {', '.join(map(repr, ON_BAD_FILE))}, got {on_bad_file!r}"
        )
    return on_bad_file


def op_error_reason(error: Exception) -> str:
    """A TensorFlow op error's message as one short line, without the
    `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    line = re.sub(r"^\{\{[^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", line)
    return line.strip() or type(error).__name__


class BadFiles:
    """Collects the bad inputs of one load, or raises for the first one.

    Args:
        on_bad_file: `"raise"` or `"skip"`.
        source: What is being loaded, for messages, e.g. `"image folder '/x'"`.
    """

    def __init__(self, on_bad_file: str, source: str):
        self.on_bad_file = check_on_bad_file(on_bad_file)
        self.source = source
        self.skipped: list[tuple[str, str]] = []

    def bad(self, path: str, reason: str, message: str | None = None) -> None:
        """Records a bad input, or raises `ValueError(message)` (default:
        "bad file PATH: REASON") plus how to skip, when not skipping."""
        if self.on_bad_file == "raise":
            message = message or f"bad file {path!r}: {reason}"
            raise ValueError(f"{message} (in {self.source}; {_HINT})")
        self.skipped.append((path, reason))

    def _listing(self) -> str:
        shown = ", ".join(f"{path!r} ({reason})" for path, reason in self.skipped[:_SHOWN])
        more = len(self.skipped) - _SHOWN
        return shown + (f" and {more} more" if more > 0 else "")

    def warn(self) -> None:
        """Warns with the count and the first few names, if any were skipped."""
        if self.skipped:
            warnings.warn(
                f"skipped {len(self.skipped)} bad file(s) in {self.source}: {self._listing()}; "
                "the returned data's `skipped` lists them all",
                UserWarning,
                stacklevel=3,
            )

    def check_left(self, count: int, what: str) -> None:
        """Raises if `count` (of `what`) is 0 because bad files were skipped."""
        if count == 0 and self.skipped:
            raise ValueError(
                f"no {what} left in {self.source}: {len(self.skipped)} file(s) were "
                f"skipped as bad: {self._listing()}"
            )


def decode_image_file(path: str | pathlib.Path, size: tuple[int, int] | None) -> np.ndarray:
    """An image file as float32 RGB `(H, W, 3)` in `[0, 1]`, resized to `size`
    (antialiased bilinear) if given; raises `BadFile` with the reason."""
    import tensorflow as tf

    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise BadFile(f"cannot be read ({error.strerror or type(error).__name__})") from None
    if not data:
        raise BadFile("is empty (0 bytes)")
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.convert_image_dtype(image, tf.float32)
        if size is not None:
            image = tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0.0, 1.0)
    except tf.errors.OpError as error:
        raise BadFile(f"is not a decodable image ({op_error_reason(error)})") from None
    return image.numpy()


def read_caption_file(path: pathlib.Path) -> list[str]:
    """The non-empty, stripped lines of a UTF-8 caption file; raises
    `BadFile` if it cannot be read, is not UTF-8 or holds no caption."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise BadFile(f"cannot be read ({error.strerror or type(error).__name__})") from None
    except UnicodeDecodeError as error:
        raise BadFile(f"is not UTF-8 text ({error.reason} at byte {error.start})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise BadFile("has no caption: expected a non-empty caption on at least one line")
    return lines


def tfds_decoded(
    read: Callable[[bool], Any],
    image_feature: Any,
    image_key: str,
    outputs: Callable[[dict], tuple],
    bad: BadFiles,
    split: str,
) -> tuple[Any, Callable[[set], None]]:
    """A TFDS split with its undecodable images dropped inside `tf.data`.

    Args:
        read: `read(encoded)` gives the split's examples with their
            `tfds_id`; with `encoded=True`, the `image_key` image still
            encoded (`tfds_split(..., image_key=..., encoded=...)`).
        image_feature: The `tfds.features.Image` of `image_key`.
        outputs: `example -> tuple` of the tensors to keep.
        bad: Where undecodable examples go (or which raises for them).

    Returns:
        `(dataset, finish)`: `dataset` yields `(tfds_id, *outputs)` for the
        examples that decoded, in order; after iterating it, call
        `finish(seen_ids)`. When fewer examples came out than the split has
        (or its size is unknown), it reads the encoded images again and
        reports each example that did not come out, by `tfds_id` and the
        reason its image does not decode, through `bad`.
    """
    import tensorflow as tf

    raw = read(False)
    dataset = raw.map(
        lambda example: (example["tfds_id"], *outputs(example)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors()

    def finish(seen: set) -> None:
        total = int(raw.cardinality())
        if total >= 0 and total == len(seen):
            return  # The usual case: nothing failed, nothing to re-read.
        try:
            for example in read(True).as_numpy_iterator():
                tfds_id = example["tfds_id"]
                if tfds_id in seen:
                    continue
                name = tfds_id.decode("utf-8")
                try:
                    image_feature.decode_example(tf.constant(example[image_key]))
                    reason = "its example failed to decode or convert"
                except (tf.errors.OpError, ValueError) as error:
                    reason = op_error_reason(error)
                bad.bad(
                    name,
                    f"is not a decodable image ({reason})",
                    f"could not decode the {image_key!r} image of TFDS example {name!r} "
                    f"(split {split!r}): {reason}",
                )
        except tf.errors.OpError as error:
            raise ValueError(
                f"could not read split {split!r} of {bad.source}: {op_error_reason(error)}"
            ) from None

    return dataset, finish
