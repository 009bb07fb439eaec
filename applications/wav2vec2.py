"""wav2vec 2.0: masked latent spans, contrastive and diversity loss (Baevski et al. 2020).

    python applications/wav2vec2.py                        # the embedded preset, on CPU
    python applications/wav2vec2.py --preset paper --dataset folder:~/librispeech_wavs --set batch_size=64

The presets and every value they set: `keras-ssl presets wav2vec2`; every flag:
`python applications/wav2vec2.py --help`. The run writes the pretrained encoder
(`encoder.keras`, `encoder_preset/`) and the method's outputs to --out.
"""

import os
import sys

if __name__ == "__main__":
    # The keras-ssl command in this process: it picks the backend before Keras loads.
    os.execv(sys.executable, [sys.executable, "-m", "keras_ssl.cli", "pretrain", "wav2vec2",
                              *sys.argv[1:]])
