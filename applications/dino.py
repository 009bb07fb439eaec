"""DINO: self-distillation with centering, sharpening and multi-crop (Caron et al. 2021).

    python applications/dino.py                        # the embedded preset, on CPU
    python applications/dino.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets dino`; every flag:
`python applications/dino.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "dino",
                              *sys.argv[1:]])
