"""Barlow Twins: the cross-correlation of two views pushed to the identity (Zbontar et al. 2021).

    python applications/barlow_twins.py                        # the embedded preset, on CPU
    python applications/barlow_twins.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets barlow_twins`; every flag:
`python applications/barlow_twins.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "barlow_twins",
                              *sys.argv[1:]])
