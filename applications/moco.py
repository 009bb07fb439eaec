"""MoCo v2: a queue of keys from a momentum encoder (Chen et al. 2020; He et al. 2020).

    python applications/moco.py                        # the embedded preset, on CPU
    python applications/moco.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets moco`; every flag:
`python applications/moco.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "moco",
                              *sys.argv[1:]])
