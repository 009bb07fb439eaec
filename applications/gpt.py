"""GPT: next-token language modelling, with generation (Radford et al. 2019).

    python applications/gpt.py                        # the embedded preset, on CPU
    python applications/gpt.py --preset paper --dataset ~/text/ --set batch_size=64

The presets and every value they set: `keras-ssl presets gpt`; every flag:
`python applications/gpt.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "gpt",
                              *sys.argv[1:]])
