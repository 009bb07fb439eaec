"""MAE: masked autoencoders, 75% of the patches hidden (He et al. 2022).

    python applications/mae.py                        # the embedded preset, on CPU
    python applications/mae.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets mae`; every flag:
`python applications/mae.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "mae",
                              *sys.argv[1:]])
