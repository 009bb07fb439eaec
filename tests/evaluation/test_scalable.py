"""Evaluation at scale: streamed feature extraction, k-NN with keras.ops,
the Keras linear probe and KNNMonitor on datasets. Tiny on purpose."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ssl.evaluation import (
    KNNMonitor,
    evaluate_knn,
    extract_features,
    extract_features_and_labels,
    knn_accuracy,
    knn_predict,
    linear_probe_accuracy,
)
from keras_ssl.evaluation import features as features_module
from keras_ssl.evaluation import knn as knn_module
from keras_ssl.evaluation import linear_probe as probe_module

RNG = np.random.default_rng(0)
UINT8_IMAGES = RNG.integers(0, 256, (70, 4, 4, 3), dtype=np.uint8)
LABELS = RNG.integers(0, 3, 70)


def tiny_encoder(dims=5):
    return keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Conv2D(dims, 3, padding="same")]
    )


# --- extract_features / extract_features_and_labels on datasets ------------


def test_streamed_features_match_the_array_path(monkeypatch):
    # 9 batches of 8 (the last of 6), in chunks of 4 batches: 32, 32, 6.
    monkeypatch.setattr(features_module, "_BATCHES_PER_CHUNK", 4)
    encoder = tiny_encoder()
    expected = extract_features(
        encoder, UINT8_IMAGES.astype("float32") / 255, batch_size=8
    )
    # uint8 -> float32 in [0, 1].
    images = tf.data.Dataset.from_tensor_slices(UINT8_IMAGES).batch(8)
    np.testing.assert_allclose(
        extract_features(encoder, images), expected, rtol=1e-5, atol=1e-6
    )
    # uint8 arrays get the same conversion.
    np.testing.assert_allclose(
        extract_features(encoder, UINT8_IMAGES, batch_size=8),
        expected, rtol=1e-5, atol=1e-6,
    )
    # Labelled and shuffled: each feature keeps its own label.
    labelled = (
        tf.data.Dataset.from_tensor_slices((UINT8_IMAGES, LABELS, np.arange(70)))
        .shuffle(70, seed=1, reshuffle_each_iteration=False)
        .batch(8)
    )
    order = np.concatenate([batch[2] for batch in labelled.as_numpy_iterator()])
    features, labels = extract_features_and_labels(encoder, labelled)
    assert features.shape == (70, 5) and labels.shape == (70,)
    np.testing.assert_array_equal(labels, LABELS[order])
    np.testing.assert_allclose(features, expected[order], rtol=1e-5, atol=1e-6)
    # extract_features ignores the labels of a labelled dataset.
    np.testing.assert_allclose(
        extract_features(encoder, labelled), features, rtol=1e-5, atol=1e-6
    )


def test_progress_bar(capsys):
    dataset = tf.data.Dataset.from_tensor_slices(UINT8_IMAGES).batch(35)
    extract_features(tiny_encoder(), dataset, verbose=1)
    assert "2/2" in capsys.readouterr().out


def test_dataset_errors():
    encoder = tiny_encoder()
    single = tf.data.Dataset.from_tensor_slices(UINT8_IMAGES)
    with pytest.raises(ValueError, match="Batch the dataset"):
        extract_features(encoder, single)
    images = single.batch(8)
    with pytest.raises(ValueError, match="labels"):
        extract_features_and_labels(encoder, images)
    with pytest.raises(ValueError, match="infinite"):
        extract_features(encoder, images.repeat())
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        extract_features_and_labels(encoder, UINT8_IMAGES)
    with pytest.raises(ValueError, match="element_spec"):
        extract_features(encoder, images.map(lambda x: {"image": x}))


# --- k-NN with keras.ops ---------------------------------------------------


@pytest.mark.parametrize(
    "k, temperature, chunk_size",
    [(1, 0.07, 7), (5, 0.07, None), (20, 0.5, 64), (300, 1e-3, 25)],
)
def test_keras_knn_matches_numpy(k, temperature, chunk_size):
    rng = np.random.default_rng(k)
    train = rng.normal(size=(200, 16)).astype("float32")
    labels = rng.integers(0, 6, 200)
    queries = rng.normal(size=(60, 16)).astype("float32")
    predictions = {
        implementation: knn_predict(
            train, labels, queries, num_classes=6, k=k,
            temperature=temperature, chunk_size=chunk_size,
            implementation=implementation,
        )
        for implementation in ("numpy", "keras")
    }
    assert predictions["keras"].dtype == np.int64
    np.testing.assert_array_equal(predictions["keras"], predictions["numpy"])


def test_keras_knn_breaks_ties_like_numpy():
    # torch's top_k does not prefer the lowest index among ties: those rows
    # are redone on the host.
    rng = np.random.default_rng(7)
    e1, e2 = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    cases = [
        (np.array([e2, e1, e1, e1, e1]), np.array([0, 2, 1, 1, 2]),
         np.array([e1]), 3),
        # Collapsed features: every training feature ties.
        (np.ones((300, 4)), rng.integers(0, 5, 300), np.ones((20, 4)), 5),
    ]
    train = rng.normal(size=(300, 8))
    train[150:] = train[:150]  # duplicates
    cases.append((train, rng.integers(0, 5, 300), rng.normal(size=(40, 8)), 5))
    for case, (train, labels, queries, num_classes) in enumerate(cases):
        for k in (1, 2, 3, 4, 5) if case == 0 else (1, 4):
            expected, predicted = (
                knn_predict(train, labels, queries, num_classes, k=k,
                            implementation=implementation)
                for implementation in ("numpy", "keras")
            )
            np.testing.assert_array_equal(predicted, expected)


def test_knn_implementation_choice_and_chunk_bound():
    assert knn_module.resolve_implementation("auto") == "keras"
    with pytest.raises(ValueError, match="implementation"):
        knn_predict(np.eye(3), [0, 1, 2], np.eye(3), 3, implementation="gpu")
    with pytest.raises(ValueError, match="chunk_size"):
        knn_predict(np.eye(3), [0, 1, 2], np.eye(3), 3, chunk_size=0)
    # The automatic chunk keeps chunk x N float32 similarities <= 64 MB.
    for num_train in (10, 10_000, 1_281_167, 10**8):
        chunk = knn_module._resolve_chunk_size(None, num_train)
        assert 1 <= chunk <= 4096
        assert chunk == 1 or chunk * num_train * 4 <= 64 * 2**20


# --- the Keras linear probe ------------------------------------------------


def blobs(rng, num_items, num_classes, dims, separation):
    labels = rng.integers(0, num_classes, num_items)
    centers = separation * np.eye(num_classes, dims)
    features = centers[labels] + rng.normal(size=(num_items, dims))
    # An offset and scale: both solvers standardise.
    return (100.0 * features + 30.0).astype("float32"), labels


def test_keras_probe_on_separable_features(monkeypatch):
    rng = np.random.default_rng(1)
    x_train, y_train = blobs(rng, 400, 4, 16, separation=5.0)
    x_test, y_test = blobs(rng, 200, 4, 16, separation=5.0)
    lbfgs = linear_probe_accuracy(x_train, y_train, x_test, y_test)
    keras_probe = linear_probe_accuracy(
        x_train, y_train, x_test, y_test, solver="keras", epochs=5,
        batch_size=100, seed=3,
    )
    assert lbfgs >= 0.98 and keras_probe >= 0.98
    # "auto" takes L-BFGS for small data and Keras above the size limit.
    calls = []

    def keras_probe_stub(train, labels, test, *args):
        calls.append(len(train))
        return np.zeros(len(test), dtype=np.int64)

    monkeypatch.setattr(probe_module, "_keras_probe", keras_probe_stub)
    assert linear_probe_accuracy(x_train, y_train, x_test, y_test) == lbfgs
    assert calls == []
    monkeypatch.setattr(probe_module, "LBFGS_MAX_EXAMPLES", 100)
    linear_probe_accuracy(x_train, y_train, x_test, y_test)
    assert calls == [400]


def test_keras_probe_batches_are_seeded():
    features, labels = np.arange(10.0)[:, None], np.arange(10)

    def batches(seed):
        return [
            labels_batch.tolist()
            for _, labels_batch in probe_module._shuffled_batches(
                features, labels, batch_size=4, epochs=3, seed=seed
            )
        ]

    assert batches(0) == batches(0) != batches(1)
    epochs = np.array(sum(batches(0), [])).reshape(3, 10)
    # Each epoch is a permutation of the data, and the epochs differ.
    assert all(sorted(epoch) == list(range(10)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3


def test_keras_probe_is_close_to_lbfgs_on_a_hard_case():
    rng = np.random.default_rng(2)
    x_train, y_train = blobs(rng, 800, 8, 32, separation=1.2)
    x_test, y_test = blobs(rng, 400, 8, 32, separation=1.2)
    lbfgs = linear_probe_accuracy(x_train, y_train, x_test, y_test)
    keras_probe = linear_probe_accuracy(
        x_train, y_train, x_test, y_test, solver="keras", epochs=5,
        batch_size=160,
    )
    assert 0.25 < lbfgs < 0.6  # hard indeed, and above chance (0.125)
    assert abs(keras_probe - lbfgs) < 0.04


def test_probe_errors():
    features, labels = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="solver"):
        linear_probe_accuracy(features, labels, features, labels, solver="sgd")
    with pytest.raises(ValueError, match="labels"):
        linear_probe_accuracy(features, labels[:3], features, labels)
    with pytest.raises(ValueError, match="different sizes"):
        linear_probe_accuracy(features, labels, features[:, :3], labels)


# --- KNNMonitor and evaluate_knn on labelled datasets ----------------------


class TinySSLModel(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.Sequential(
            [keras.Input((4, 4, 3)), keras.layers.Flatten(),
             keras.layers.Dense(4)], name="encoder",
        )
        self.head = keras.layers.Dense(3)

    def call(self, inputs, training=False):
        return self.head(self.encoder(inputs, training=training))


def test_knn_monitor_reads_labelled_datasets():
    images = UINT8_IMAGES.astype("float32") / 255
    train = tf.data.Dataset.from_tensor_slices(
        (UINT8_IMAGES[:50], LABELS[:50])).batch(16)
    test = tf.data.Dataset.from_tensor_slices(
        (UINT8_IMAGES[50:], LABELS[50:])).batch(16)
    model = TinySSLModel()
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    monitor = KNNMonitor(train, test, k=5, verbose=0, implementation="keras")
    history = model.fit(images, LABELS, batch_size=35, epochs=2, verbose=0,
                        callbacks=[monitor])
    assert monitor.evaluated_epochs == [1, 2]
    assert history.history["knn_accuracy"] == monitor.accuracies
    # The last accuracy is that of the final weights, from the same images.
    expected = knn_accuracy(
        extract_features(model.encoder, images[:50]), LABELS[:50],
        extract_features(model.encoder, images[50:]), LABELS[50:],
        num_classes=3, k=5,
    )
    assert monitor.accuracies[-1] == expected
    assert evaluate_knn(model.encoder, train, None, test, None, k=5) == expected
    with pytest.raises(ValueError, match="two labelled datasets"):
        KNNMonitor(train, test, images, LABELS)
    with pytest.raises(ValueError, match="train dataset.*labels"):
        KNNMonitor(train.map(lambda x, y: x), test)
    with pytest.raises(ValueError, match="test dataset is infinite"):
        KNNMonitor(train, test.repeat())
    with pytest.raises(ValueError, match="four arrays"):
        KNNMonitor(images, LABELS)
