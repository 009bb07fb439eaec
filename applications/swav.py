"""SwAV: swapped prediction of Sinkhorn cluster codes, with multi-crop (Caron et al. 2020).

    python applications/swav.py                        # the embedded preset, on CPU
    python applications/swav.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets swav`; every flag:
`python applications/swav.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "swav",
                              *sys.argv[1:]])
