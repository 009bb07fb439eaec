"""VICReg: invariance, variance and covariance terms on two views (Bardes et al. 2022).

    python applications/vicreg.py                        # the embedded preset, on CPU
    python applications/vicreg.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets vicreg`; every flag:
`python applications/vicreg.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "vicreg",
                              *sys.argv[1:]])
