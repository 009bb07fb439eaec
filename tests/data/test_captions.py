"""Image-caption loaders: embedded digits, a folder of images + .txt, TFDS."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ssl.data import load_image_text_data


def _png(path, rng, size=(12, 12)):
    image = (rng.random((*size, 3)) * 255).astype("uint8")
    path.write_bytes(tf.io.encode_png(image).numpy())


def test_digits_spec():
    data = load_image_text_data("digits", max_examples=50)
    assert data.image_shape == (32, 32, 3)
    assert len(data.x_train) == len(data.captions_train) == 50
    assert len(data.class_names) == 10 and data.y_test.shape == (50,)
    assert "ImageTextData" in repr(data)


def test_folder_of_images_with_captions(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i in range(6):
        folder = tmp_path / ("sub" if i % 2 else "")
        _png(folder / f"img{i}.png", rng)
        lines = f"caption {i}\n\n" + (f"another caption {i}\n" if i == 0 else "")
        (folder / f"img{i}.txt").write_text(lines)
    data = load_image_text_data(str(tmp_path), test_fraction=0.25)
    assert len(data.x_train) + len(data.x_test) == 7  # image 0 has two lines
    assert data.image_shape == (12, 12, 3)
    assert data.y_test is None
    assert all(c.startswith(("caption", "another")) for c in data.captions_train)
    resized = load_image_text_data(str(tmp_path), image_size=8)
    assert resized.image_shape == (8, 8, 3)


def test_folder_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    _png(tmp_path / "a.png", rng)
    with pytest.raises(ValueError, match="a.png has no caption file a.txt"):
        load_image_text_data(str(tmp_path))
    (tmp_path / "a.txt").write_text("   \n")
    with pytest.raises(ValueError, match="a.txt is empty"):
        load_image_text_data(str(tmp_path))
    (tmp_path / "a.txt").write_text("fine\n")
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "b.txt").write_text("broken\n")
    with pytest.raises(ValueError, match="cannot decode image .*b.png"):
        load_image_text_data(str(tmp_path))


def test_unknown_spec():
    with pytest.raises(ValueError, match="unknown image-text data"):
        load_image_text_data("nowhere")


def test_tfds_coco_captions_mock(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        data = load_image_text_data("tfds:coco_captions", data_dir=str(tmp_path),
                                    image_size=16)
    assert data.name == "tfds:coco_captions"
    assert data.image_shape == (16, 16, 3)
    assert len(data.x_train) == len(data.captions_train) == 6
    assert all(isinstance(c, str) and c.strip() for c in data.captions_train)
