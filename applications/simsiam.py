"""SimSiam: a predictor and stop-gradient, no negatives, no momentum encoder (Chen """BYOL: a predictor and an EMA target, no negatives (Grill et al. 2020). He 2021).

    python applications/simsiam.py                        # the embedded preset, on CPU
    python applications/simsiam.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets simsiam`; every flag:
`python applications/simsiam.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "simsiam",
                              *sys.argv[1:]])
