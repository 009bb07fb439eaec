"""BERT: masked language modelling and next-sentence prediction (Devlin et al. 2019).

    python applications/bert.py                        # the embedded preset, on CPU
    python applications/bert.py --preset paper --dataset ~/text/ --set batch_size=64

The presets and every value they set: `keras-ssl presets bert`; every flag:
`python applications/bert.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "bert",
                              *sys.argv[1:]])
