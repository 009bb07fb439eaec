"""Input pipelines: image data, batched augmentations and multi-view datasets."""

from keras_ssl.data import augment
from keras_ssl.data.views import SimCLRAugmentation, multi_view_dataset
from keras_ssl.data.images import DIGITS_IMAGE_SIZE, ImageData, load_image_data
from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset
from keras_ssl.data.policies import byol_augmentations, dino_multicrop, mae_augmentation
from keras_ssl.data.captions import ImageTextData, load_image_text_data
from keras_ssl.data.text import (
    SPECIAL_TOKENS,
    tokenize_captions,
    train_caption_tokenizer,
)
from keras_ssl.data.tokenizers import (
    sentinel_ids,
    train_byte_bpe,
    train_sentencepiece,
    train_wordpiece,
)
from keras_ssl.data.masked_lm import (
    mask_tokens,
    masked_lm_dataset,
    nsp_pairs,
    pack_full_sentences,
)
from keras_ssl.data.causal_lm import causal_lm_arrays, causal_lm_dataset, end_token_last
from keras_ssl.data.span_corruption import (
    fill_spans,
    random_spans_noise_mask,
    span_corruption,
    span_corruption_dataset,
    span_corruption_lengths,
    text_to_text_dataset,
)
from keras_ssl.data.audio import (
    AudioData,
    CharacterVocabulary,
    check_audio,
    default_bucket_boundaries,
    load_audio_folder,
    load_tfds_speech,
    normalize_transcript,
    read_wav,
    speech_dataset,
)
from keras_ssl.data.text_stream import (
    TextStream,
    causal_lm_stream,
    masked_lm_stream,
    span_corruption_stream,
    stream_text_files,
    stream_tfds_text,
)
from keras_ssl.data.audio_stream import (
    AudioStream,
    speech_stream_dataset,
    stream_audio_folder,
    stream_tfds_speech,
)
