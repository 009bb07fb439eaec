"""BEiT: masked patches predict the codes of a VQ tokenizer (Bao et al. 2022).

    python applications/beit.py                        # the embedded preset, on CPU
    python applications/beit.py --preset paper --dataset folder:~/imagenet/train --set batch_size=64

The presets and every value they set: `keras-ssl presets beit`; every flag:
`python applications/beit.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import sys

from keras_ssl.cli import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", "beit", *sys.argv[1:]]))
