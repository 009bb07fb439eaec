"""Pretrained applications: recipes you can rerun and backbones you can load.

Each application is one pretraining recipe (method, backbone, data,
optimizer, schedule) with a `pretrain()` that reruns it and a `load()` that
returns the backbone it produced, ready to drop into a classifier:

```python
import keras_hub, keras_ssl

print(keras_ssl.applications.list())          # names of every application
app = keras_ssl.applications.get("simclr_digits")
print(app.method, app.backbone, app.data)
backbone = app.load()                          # shipped weights, any backend
classifier = keras_hub.models.ImageClassifier(backbone=backbone, num_classes=10)
# or, with the preset's image converter (0-255 images of any size):
classifier = keras_hub.models.ImageClassifier.from_preset(app.weights, num_classes=10)
```

Two kinds of entries:

- **Embedded** (`app.weights` is set): small recipes trained by this
  repository on the data installed packages carry (the cluttered digits,
  CPython's language reference, eSpeak NG speech). Their weights ship inside
  the package as keras-hub preset directories (`keras_ssl/applications/
  weights/<name>/`), and `python -m keras_ssl.applications NAME` reproduces
  them (`app.command`).
- **Paper** (`app.weights is None`): the full-size recipes (ResNet-50
  SimCLR/MoCo/BYOL/DINO on ImageNet, ViT-B MAE/BEiT, BERT-base, RoBERTa-base,
  GPT-2 small, T5-small, wav2vec 2.0 BASE, CLIP ViT-B/32): the methods'
  `paper` presets (`keras_ssl.recipes.presets`). Nothing is downloaded: `load(preset=PATH)` loads a
  keras-hub preset directory you have locally (one of yours or a keras-hub
  one), and `pretrain(data)` trains the recipe on your data.
"""

from keras_ssl.applications.registry import Application, get, list  # noqa: A004

__all__ = ["Application", "get", "list"]
