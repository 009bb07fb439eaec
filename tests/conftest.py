"""Test configuration shared by the whole suite.

The suite runs once per backend (`KERAS_BACKEND=tensorflow|jax|torch`), each
in its own process. Device set-up must happen before TensorFlow or JAX start:
JAX gets 4 virtual CPU devices (for `keras.distribution` tests) and TensorFlow
2 logical CPU devices (for `tf.distribute.MirroredStrategy` tests).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()


def forward(model, inputs):
    """`model(inputs)` as NumPy; one compiled `predict` under JAX, which
    otherwise compiles every op of an eager call on its own."""
    if BACKEND == "jax":
        return model.predict(inputs, verbose=0)
    return keras.ops.convert_to_numpy(model(inputs))
# Jit-compile wherever the backend allows it (torch runs eagerly).
JIT_COMPILE = BACKEND != "torch"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1337)
    yield


@pytest.fixture(scope="session")
def digits():
    """The embedded cluttered-digits data set (built once per session)."""
    from keras_ssl.datasets import load_cluttered_digits

    return load_cluttered_digits()


@pytest.fixture(scope="session")
def small_images(digits):
    """256 real 32×32 images for quick training tests."""
    return np.asarray(digits.x_unlabeled[:256])


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One `tf.distribute.MirroredStrategy` over the 2 logical CPUs for the
    whole session: two strategies in one process allocate the same
    collective instance keys, and the second one's all-reduce then aborts
    with a shape mismatch against the first one's."""
    if BACKEND != "tensorflow":
        pytest.skip("tf.distribute only")
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


# --- language: the embedded corpus and tokenizers trained on it, once ------
LANGUAGE_VOCABULARY_SIZE = 800


@pytest.fixture(scope="session")
def python_docs():
    """The embedded English corpus (CPython's language reference)."""
    from keras_ssl.datasets.text_corpus import load_python_docs

    return load_python_docs()


@pytest.fixture(scope="session")
def wordpiece_tokenizer(python_docs):
    from keras_ssl.data.tokenizers import train_wordpiece

    return train_wordpiece(python_docs.documents, LANGUAGE_VOCABULARY_SIZE)


@pytest.fixture(scope="session")
def gpt2_tokenizer(python_docs):
    from keras_ssl.data.tokenizers import train_byte_bpe

    return train_byte_bpe(python_docs.documents, LANGUAGE_VOCABULARY_SIZE, "gpt2")


@pytest.fixture(scope="session")
def roberta_tokenizer(python_docs):
    from keras_ssl.data.tokenizers import train_byte_bpe

    return train_byte_bpe(python_docs.documents, LANGUAGE_VOCABULARY_SIZE, "roberta")


@pytest.fixture(scope="session")
def t5_tokenizer(python_docs):
    from keras_ssl.data.tokenizers import train_sentencepiece

    return train_sentencepiece(
        python_docs.documents, LANGUAGE_VOCABULARY_SIZE, num_sentinels=16
    )


# --- speech: a tiny embedded spoken corpus, synthesised once --------------
@pytest.fixture(scope="session")
def tiny_spoken_corpus(tmp_path_factory):
    """About 36 s of the embedded spoken corpus (real eSpeak speech of the
    text corpus), cached in a session temporary folder."""
    from keras_ssl.datasets import load_spoken_corpus

    return load_spoken_corpus(
        pretrain_minutes=0.3, labelled_minutes=0.2, test_minutes=0.1,
        cache_dir=tmp_path_factory.mktemp("speech"), verbose=0,
    )
