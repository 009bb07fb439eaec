"""RoBERTa: dynamic masking over full sentences, no NSP (Liu et al. 2019).

    python applications/roberta.py                        # the embedded preset, on CPU
    python applications/roberta.py --preset paper --dataset ~/text/ --set batch_size=64

The presets and every value they set: `keras-ssl presets roberta`; every flag:
`python applications/roberta.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import sys

from keras_ssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", "roberta", *sys.argv[1:]]))
