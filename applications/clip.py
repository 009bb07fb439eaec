"""CLIP: a symmetric contrastive loss over image-caption pairs (Radford et al. 2021).

    python applications/clip.py                        # the embedded preset, on CPU
    python applications/clip.py --preset paper --dataset folder:~/captioned_images --set batch_size=64

The presets and every value they set: `keras-ssl presets clip`; every flag:
`python applications/clip.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "clip",
                              *sys.argv[1:]])
