"""keras-hub tasks over keras-ssl's vision backbone, and the preset writer.

keras-hub finds a task for a preset through its backbone class: the
`ImageClassifier` subclass whose `backbone_cls` is the preset's backbone, and
that task's preprocessor and image converter. The classes below are those
for `CIFARResNetBackbone`, so that a preset written by `save_preset` (every
run's `encoder_preset/` and the shipped applications) loads as a working
classifier with keras-hub's own call:

```python
import keras_hub
import keras_ssl  # registers the keras-ssl classes

preset = keras_ssl.applications.get("simclr_digits").weights
classifier = keras_hub.models.ImageClassifier.from_preset(preset, num_classes=10)
classifier.fit(images, labels)  # uint8 or 0-255 images of any size
classifier.predict(images)      # the image converter resizes and rescales them
```
"""

import keras
from keras_hub.layers import ImageConverter
from keras_hub.models import ImageClassifier, ImageClassifierPreprocessor

from keras_ssl.backbones.cifar_resnet import CIFARResNetBackbone


@keras.saving.register_keras_serializable(package="keras_ssl")
class CIFARResNetImageConverter(ImageConverter):
    """Resizes images to the backbone's size and rescales 0-255 to [0, 1]
    (the range keras-ssl's view pipelines feed the encoder)."""

    backbone_cls = CIFARResNetBackbone


@keras.saving.register_keras_serializable(package="keras_ssl")
class CIFARResNetImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """keras-hub's image classifier preprocessor with the converter above."""

    backbone_cls = CIFARResNetBackbone
    image_converter_cls = CIFARResNetImageConverter


@keras.saving.register_keras_serializable(package="keras_ssl")
class CIFARResNetImageClassifier(ImageClassifier):
    """keras-hub's `ImageClassifier` (global average pooling of the feature
    map, dropout-free linear head) on a `CIFARResNetBackbone`.

    Example:

    >>> import numpy as np
    >>> backbone = CIFARResNetBackbone((8, 16), (1, 1), image_shape=(16, 16, 3))
    >>> classifier = CIFARResNetImageClassifier(backbone=backbone, num_classes=3)
    >>> tuple(classifier.predict(np.zeros((2, 16, 16, 3)), verbose=0).shape)
    (2, 3)
    """

    backbone_cls = CIFARResNetBackbone
    preprocessor_cls = CIFARResNetImageClassifierPreprocessor


def image_converter_for(backbone):
    """The image converter of a keras-ssl vision backbone with a fixed image
    size (0-255 → [0, 1], resized to that size), else None."""
    if not isinstance(backbone, CIFARResNetBackbone):
        return None
    height, width = backbone.image_shape[:2]
    if height is None or width is None:
        return None
    return CIFARResNetImageConverter(image_size=(height, width), scale=1.0 / 255.0)


def _text_preprocessor(backbone, tokenizer):
    """keras-hub's preprocessor of the backbone class's text classifier (BERT,
    RoBERTa), else of its causal LM (GPT-2), at the backbone's sequence
    length: keras-hub's defaults (512, 1024) would overrun a shorter
    position table. None for other backbones."""
    import keras_hub

    length = getattr(backbone, "max_sequence_length", None)
    for base in (keras_hub.models.TextClassifier, keras_hub.models.CausalLM):
        for task in base.__subclasses__():
            preprocessor = getattr(task, "preprocessor_cls", None)
            if task.backbone_cls is type(backbone) and preprocessor and length:
                return preprocessor(tokenizer=tokenizer, sequence_length=length)
    return None


def save_preset(backbone, directory, tokenizer=None):
    """Writes `backbone` (and its `tokenizer`) as a keras-hub preset folder,
    with what keras-hub's tasks need to load from it: the image converter of
    a keras-ssl vision backbone (`ImageClassifier.from_preset`), the text
    preprocessor at the backbone's sequence length (`TextClassifier.
    from_preset` for BERT and RoBERTa, `CausalLM.from_preset` for GPT-2).
    Returns `directory`.

    Example:

    ```python
    save_preset(model.encoder, "my_preset")
    keras_hub.models.ImageClassifier.from_preset("my_preset", num_classes=10)
    ```
    """
    directory = str(directory)
    backbone.save_to_preset(directory)
    if tokenizer is not None:
        preprocessor = _text_preprocessor(backbone, tokenizer)
        (preprocessor or tokenizer).save_to_preset(directory)
    converter = image_converter_for(backbone)
    if converter is not None:
        converter.save_to_preset(directory)
    return directory
