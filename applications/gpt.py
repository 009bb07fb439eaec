"""GPT: next-token language modelling, with generation (Radford et al. 2019).

    python applications/gpt.py                        # the embedded preset, on CPU
    python applications/gpt.py --preset paper --dataset ~/text/ --set batch_size=64

The presets and every value they set: `keras-ssl presets gpt`; every flag:
`python applications/gpt.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import sys

from keras_ssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", "gpt", *sys.argv[1:]]))
