"""T5: span corruption with sentinels (Raffel et al. 2020).

    python applications/t5.py                        # the embedded preset, on CPU
    python applications/t5.py --preset paper --dataset ~/text/ --set batch_size=64

The presets and every value they set: `keras-ssl presets t5`; every flag:
`python applications/t5.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "t5",
                              *sys.argv[1:]])
