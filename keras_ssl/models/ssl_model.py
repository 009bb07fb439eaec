"""The training core shared by every keras-ssl method.

This module is the one place in keras-ssl that knows which backend runs.
A method subclasses `SSLModel` and writes, in backend-neutral `keras.ops`:

1. `call(inputs, training)`: the forward pass(es);
2. `compute_loss(x, y, y_pred, sample_weight, training)`: the objective;
3. optionally `after_step()`: state that moves after the optimizer step
   (EMA target encoders, momentum schedules, queues).

`SSLModel.train_step` runs Keras' own training step for the backend and then
`after_step()`. Under JAX the trainer holds the model state functionally, so
`after_step()` runs inside a `keras.StatelessScope` mapped onto the *new*
state and the non-trainable values it assigns are returned in the state
tuple; under TensorFlow it runs inside the same `tf.function`; under PyTorch
it runs eagerly, without autograd.
"""

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution

from keras_ssl.layers.vit import prefix_tokens
from keras_ssl.losses.contrastive import l2_normalize

_BACKEND = keras.backend.backend()
# Multi-crop methods (DINO, SwAV): the first views are the global crops.
NUM_GLOBAL_CROPS = 2
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_multi_device_support():
    """Fails clearly when several devices are requested on a backend whose
    Keras has no distribution support for it (Keras 3.15: PyTorch), rather
    than silently training on one device.

    Raises:
        RuntimeError: naming what to use instead.
    """
    from keras.src import backend as backend_module

    supported = getattr(backend_module, "distribution_lib", None) is not None
    requested = []
    if keras.distribution.distribution() is not None:
        requested.append(
            f"keras.distribution.{type(keras.distribution.distribution()).__name__}"
        )
    if _BACKEND != "tensorflow":
        import sys

        tf = sys.modules.get("tensorflow")
        if tf is not None and tf.distribute.has_strategy():
            requested.append(
                f"tf.distribute.{type(tf.distribute.get_strategy()).__name__}"
            )
            supported = False  # a TF strategy only distributes TF programs
    if requested and not supported:
        raise RuntimeError(
            f"{' and '.join(requested)} was set, but the {_BACKEND} backend of "
            f"Keras {keras.__version__} cannot distribute training: keras-ssl "
            f"would train on one device. The same model definition trains on "
            "many devices with KERAS_BACKEND=jax and "
            "keras.distribution.DataParallel (or keras_ssl.distribution."
            "model_parallel), or with KERAS_BACKEND=tensorflow inside "
            "tf.distribute.MirroredStrategy().scope()."
        )


def _multi_replica_context():
    """The `tf.distribute` replica context when a step runs on several
    replicas, else None (one device, JAX `keras.distribution`, torch)."""
    if _BACKEND != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        return context
    return None


def _static_shape(x):
    return tuple(x.shape)


def is_int(value):
    """Whether `value` is an integer (an int or an integral float), not a bool:
    for constructor checks."""
    return not isinstance(value, bool) and int(value) == value


def representation_std(z):
    """The per-dimension std over the batch of the L2-normalised rows of `z`,
    averaged over dimensions, in float32: 0 when the representation collapses,
    about 1/sqrt(d) when spread out (SimSiam's collapse monitor)."""
    z = l2_normalize(ops.cast(z, "float32"))
    return ops.mean(ops.std(z, axis=0))


class SSLModel(keras.Model):
    """Base class of keras-ssl's self-supervised methods.

    Subclasses define `call`, `compute_loss` and optionally `after_step`, and
    get for free: the per-backend training step, loss scaling under
    `tf.distribute`, regularisation losses, input checks with clear messages,
    feature extraction (`encode`) and extra metrics in the `fit` history.

    Example: a (toy) method whose target is an exponential moving average of
    the online encoder, in a dozen lines.

    ```python
    class MeanTeacher(keras_ssl.SSLModel):
        def __init__(self, encoder, target, momentum=0.99, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.target = encoder, target
            self.target.trainable = False
            self.momentum = momentum

        def call(self, views, training=False):
            v1, v2 = self.check_views(views, num_views=2)
            return self.encode(v1, training), self.target(v2, training=False)

        def compute_loss(self, x=None, y=None, y_pred=None,
                         sample_weight=None, training=True):
            online, target = y_pred
            return keras.ops.mean(keras.ops.square(online - target))

        def after_step(self):
            self.ema_update(self.target.weights, self.encoder.weights,
                            self.momentum)
    ```
    """

    def __init__(self, *args, synchronized_batch_norm=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.synchronized_batch_norm = bool(synchronized_batch_norm)

    def get_config(self):
        config = super().get_config()
        if self.synchronized_batch_norm:
            config["synchronized_batch_norm"] = True
        return config

    def make_train_function(self, *args, **kwargs):
        # Before `fit` or `train_on_batch` builds the step (overriding
        # `compile` would stop Keras from re-compiling loaded models).
        check_multi_device_support()
        return super().make_train_function(*args, **kwargs)

    # --- what methods implement ---------------------------------------------
    def after_step(self):
        """Updates state after each optimizer step; the default does nothing.

        Use `Variable.assign` on non-trainable variables only (target
        encoders, queues, centers, step counters). Values computed from the
        online weights go through `ops.stop_gradient` (see `ema_update`).
        """

    # Likely causes of a NaN/Inf loss particular to the method, named (after
    # the common ones) by the error `fit` raises (keras_ssl.callbacks).
    nan_hints = ()

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with a `NonFiniteLossGuard` (a NaN/Inf loss
        raises a `NonFiniteLossError` naming the method, the step and the
        likely causes) and exact resumption with a `ResumableBackup`
        (already-trained batches are skipped); see `keras_ssl.callbacks`."""
        from keras_ssl.callbacks import prepare_fit

        args, kwargs = prepare_fit(self, args, kwargs)
        return super().fit(*args, **kwargs)

    # --- the training core --------------------------------------------------
    def train_step(self, *args):
        self._synchronize_batch_norm()
        if _BACKEND == "jax":
            state, data = args
            before = self._jax_iterations(state[2])
            logs, state = super().train_step(state, data)
            return logs, self._jax_after_step(state, before)
        before = ops.copy(ops.convert_to_tensor(self.optimizer.iterations))
        logs = super().train_step(*args)
        if _BACKEND == "torch":
            import torch

            with torch.no_grad():
                self._after_optimizer_step(before)
        else:
            self._after_optimizer_step(before)
        return logs

    def _after_optimizer_step(self, before):
        """Runs `after_step()` and keeps what it assigned only when the
        optimizer applied an update (`iterations` moved from `before`): not
        after a micro-batch that only accumulated gradients, nor after a step
        that a `LossScaleOptimizer` skipped for non-finite gradients."""
        if not self._optimizer_may_skip_updates():
            self.after_step()
            return
        stepped = ops.not_equal(
            ops.convert_to_tensor(self.optimizer.iterations), before
        )
        variables = self.non_trainable_variables
        old = [ops.copy(ops.convert_to_tensor(v)) for v in variables]
        self.after_step()
        for variable, value in zip(variables, old):
            variable.assign(ops.where(stepped, variable.value, value))

    def _optimizer_may_skip_updates(self):
        """Whether a train step can end without an optimizer update: with
        gradient accumulation, or a `LossScaleOptimizer` (mixed_float16)."""
        optimizer = self.optimizer
        if optimizer is None:
            return False
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return True
        return (optimizer.gradient_accumulation_steps or 1) > 1

    def _jax_iterations(self, optimizer_vars):
        """`optimizer.iterations` read from the JAX optimizer state."""
        mapping = list(zip(self.optimizer.variables, optimizer_vars))
        with keras.StatelessScope(state_mapping=mapping):
            return ops.convert_to_tensor(self.optimizer.iterations)

    def _synchronize_batch_norm(self):
        """Applies `synchronized_batch_norm` to every batch-norm layer of the
        model (encoder, heads, targets) before the step is traced.

        Only `tf.distribute` needs it: there each replica would otherwise
        normalise with its own slice of the batch. A JAX `keras.distribution`
        step sees the global batch (statistics are global already) and torch
        runs on one device.
        """
        if _BACKEND != "tensorflow" or not self.synchronized_batch_norm:
            return
        for layer in self._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True

    def _jax_after_step(self, state, before=None):
        """Runs `after_step()` statelessly on the new JAX state (what it
        assigns kept only when `iterations` moved from `before`, as in
        `_after_optimizer_step`)."""
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        if self.optimizer is not None:
            mapping += list(zip(self.optimizer.variables, optimizer_vars))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            stepped = (
                before is None
                or not self._optimizer_may_skip_updates()
                or ops.not_equal(
                    ops.convert_to_tensor(self.optimizer.iterations), before
                )
            )
            self.after_step()
        non_trainable = [
            scope.get_current_value(v) if stepped is True
            else ops.where(stepped, scope.get_current_value(v), old)
            for v, old in zip(self.non_trainable_variables, non_trainable)
        ]
        return trainable, non_trainable, optimizer_vars, metrics_vars

    def _compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # Every Keras trainer (and `test_step`) goes through this wrapper, so
        # it is where the method's objective gets the model's regularisation
        # losses added and is scaled for `tf.distribute`: TF sums gradients
        # over replicas and Keras un-scales the logged value again.
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=training)
        for extra in self.losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return scale_loss_for_distribution(loss)

    # Constructor arguments that are whole models, serialised in `get_config`
    # (BEiT adds its tokenizer).
    nested_models = ("encoder",)

    @classmethod
    def from_config(cls, config):
        """Rebuilds the method; nested, serialised models (`nested_models`:
        the `encoder`, ...) are deserialised first (as keras-hub's `Task`
        does for its backbone)."""
        config = dict(config)
        for name in cls.nested_models:
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    # --- helpers for methods ------------------------------------------------
    @staticmethod
    def ema_update(target_variables, online_variables, momentum):
        """θ_target ← m·θ_target + (1 − m)·θ_online, without gradient.

        Args:
            target_variables: the variables to move (non-trainable).
            online_variables: the variables to move towards, same order.
            momentum: `m`, a float or a scalar tensor in [0, 1].
        """
        target_variables = list(target_variables)
        online_variables = list(online_variables)
        if len(target_variables) != len(online_variables):
            raise ValueError(
                "EMA update needs as many target as online variables; got "
                f"{len(target_variables)} and {len(online_variables)}."
            )
        for target, online in zip(target_variables, online_variables):
            m = ops.cast(momentum, target.dtype)
            online_value = ops.stop_gradient(ops.cast(online, target.dtype))
            target.assign(m * target + (1.0 - m) * online_value)

    @staticmethod
    def gather_across_replicas(x):
        """`(global_x, offset)`: `x` concatenated over the replicas of a
        `tf.distribute` strategy, in replica order, and the global index of
        this replica's first row.

        The gather passes gradients back: TensorFlow's `all_gather` sums the
        replicas' upstream gradients and hands each replica its own slice,
        so with losses scaled by `1 / num_replicas` the summed gradients are
        those of the global-batch loss (a test compares them with one
        device). Without a multi-replica strategy, and under JAX
        `keras.distribution` (where the step already sees the global batch)
        or torch, it returns `(x, 0)`.
        """
        context = _multi_replica_context()
        if context is not None:
            gathered = context.all_gather(x, axis=0)
            offset = context.replica_id_in_sync_group * ops.shape(x)[0]
            return gathered, offset
        return x, 0

    @staticmethod
    def draw_for_replica(draw, batch_size):
        """This replica's rows of one random draw for the global batch.

        `draw(n)` returns random values with `n` rows (masks, noise) from a
        `SeedGenerator`. The replicas of a `tf.distribute` strategy hold the
        same generator state, so drawing `batch_size` rows on each would give
        replica r's images the masks of replica 0's; instead every replica
        draws the global batch's rows and keeps its own slice, which is also
        exactly what one device draws for the whole batch. Elsewhere (one
        device, JAX `keras.distribution`, torch) it returns `draw(batch_size)`.
        """
        context = _multi_replica_context()
        if context is not None:
            values = draw(batch_size * context.num_replicas_in_sync)
            start = context.replica_id_in_sync_group * batch_size
            return values[start : start + batch_size]
        return draw(batch_size)

    def uniform_noise(self, batch_size, shape=()):
        """Uniform noise `(batch_size, *shape)` in [0, 1) from the model's
        `self.seed_generator`, this replica's rows of one global draw
        (`draw_for_replica`): fresh at every step, jit-compiled."""
        return self.draw_for_replica(
            lambda n: keras.random.uniform(
                (n,) + tuple(shape), seed=self.seed_generator),
            batch_size,
        )

    @staticmethod
    def parameter_pairs(target_networks, online_networks):
        """`(targets, onlines)`: the target copies of the online networks'
        trainable parameters, in matching order, for `ema_update`.

        Only what the optimizer trains moves by EMA (kernels, biases,
        batch-norm scales and offsets); a target that normalises with batch
        statistics keeps its moving statistics from its own forward passes,
        as in the papers' code (PyTorch's `parameters()` leaves out buffers).
        """
        targets = [w for n in target_networks for w in n.weights]
        onlines = [w for n in online_networks for w in n.weights]
        pairs = [(t, o) for t, o in zip(targets, onlines) if o.trainable]
        return [t for t, _ in pairs], [o for _, o in pairs]

    # --- heads and target copies, built from the encoder's feature width ----
    def build_networks(self, feature_dim, image_shape=None):
        """Creates the method's heads and target copies around `encoder`.

        Methods with a momentum target override it; it runs once, from
        `build_networks_early` (constructor) or `build_networks_late`
        (`build`), whichever first knows the encoder's feature width.
        """
        raise NotImplementedError

    @property
    def networks_built(self):
        return getattr(self, "_networks_built", False)

    def build_networks_early(self):
        """Builds the networks now if the encoder is a functional model.

        A functional encoder (keras-hub backbones, keras.applications,
        `CIFARResNetBackbone`) knows its feature width, so the target copies
        are made in the constructor, outside any traced function, with the
        online weights' values.
        """
        if not self.encoder.built or self.networks_built:
            return
        outputs = getattr(self.encoder, "outputs", None)
        if outputs:
            self.build_networks(outputs[0].shape[-1])
            self._networks_built = True

    def build_networks_late(self, image_shape):
        """Builds the networks from `build()` for other encoders (call the
        model on a batch before `fit`: the copies take the values)."""
        if self.networks_built:
            return
        if not self.encoder.built:
            self.encoder.build(image_shape)
        feature_dim = self.encoder.compute_output_shape(image_shape)[-1]
        self.build_networks(feature_dim, image_shape)
        self._networks_built = True

    def add_metric_trackers(self, *names):
        """Creates mean trackers whose values appear in the `fit` history."""
        if not hasattr(self, "_trackers"):
            self._trackers = {}
        for name in names:
            self._trackers[name] = keras.metrics.Mean(name=name)

    def track(self, **values):
        """Updates the trackers created by `add_metric_trackers`."""
        for name, value in values.items():
            self._trackers[name].update_state(ops.stop_gradient(value))

    def encode(self, images, training=False):
        """Encoder features as vectors: feature maps are average-pooled."""
        features = self.encoder(images, training=training)
        return pool_features(features, self.encoder)

    def view_shape(self, views_shape):
        """The shape of one view, from the shape `build()` receives."""
        if not views_shape or not isinstance(views_shape[0], (tuple, list)):
            raise ValueError(self._not_a_tuple_message(views_shape))
        return tuple(views_shape[0])

    def _not_a_tuple_message(self, got):
        return (
            f"{type(self).__name__} expects a tuple of views (batches of "
            f"images), got a single input of shape {got}. Build inputs with "
            "`keras_ssl.data.multi_view_dataset`, which yields "
            "((view_1, view_2),) elements."
        )

    def check_views(self, views, num_views=None):
        """Validates a tuple of image batches (views) and returns it.

        Raises:
            ValueError: with a message naming what was expected, when `views`
                is not a tuple of `num_views` float tensors of rank 4 with the
                same shape and at least 2 examples.
        """
        name = type(self).__name__
        if not isinstance(views, (tuple, list)):
            raise ValueError(
                self._not_a_tuple_message(tuple(getattr(views, "shape", ())))
            )
        if num_views is not None and len(views) != num_views:
            raise ValueError(
                f"{name} expects {num_views} views per example, got "
                f"{len(views)}."
            )
        first = _static_shape(views[0])
        for i, view in enumerate(views):
            shape = self._check_float_images(view, f"view {i}")
            if num_views is not None and shape != first:
                raise ValueError(
                    f"{name}: all views must have the same shape; view 0 has "
                    f"{first} and view {i} has {shape}."
                )
        if first[0] is not None and first[0] < 2:
            raise ValueError(
                f"{name} needs at least 2 images per batch (batch statistics "
                f"and in-batch comparisons need 2); got a batch of {first[0]}."
            )
        return tuple(views)

    # --- multi-crop views (DINO, SwAV) --------------------------------------
    # Why a batch needs 2 images, for the multi-crop error message.
    batch_statistic = "in-batch statistics need 2"

    def check_crop_shapes(self, shapes, num_local_crops):
        """Validates multi-crop shapes (count, rank, sizes, batch size):
        `NUM_GLOBAL_CROPS` global crops, then `num_local_crops` local ones,
        as `keras_ssl.data.multicrop.multi_crop_dataset` makes them."""
        name = type(self).__name__
        num_crops = NUM_GLOBAL_CROPS + num_local_crops
        if not isinstance(shapes, (tuple, list)) or not all(
            isinstance(s, (tuple, list)) for s in shapes
        ):
            got = tuple(shapes) if isinstance(shapes, (tuple, list)) else shapes
            raise ValueError(
                f"{name} expects a tuple of crops ({NUM_GLOBAL_CROPS} global, "
                f"then {num_local_crops} local), got a single input of shape "
                f"{got}. Build inputs with "
                "`keras_ssl.data.multicrop.multi_crop_dataset`."
            )
        if len(shapes) != num_crops:
            raise ValueError(
                f"{name} expects {NUM_GLOBAL_CROPS} global + {num_local_crops} "
                f"local crops = {num_crops} views per example, got {len(shapes)}."
            )
        for i, shape in enumerate(shapes):
            if len(shape) != 4:
                raise ValueError(
                    f"{name}: crop {i} must be a batch of images of rank 4 "
                    f"(batch, height, width, channels); got shape {tuple(shape)}."
                )
            if shape[0] is not None and shape[0] < 2:
                raise ValueError(
                    f"{name} needs at least 2 images per batch "
                    f"({self.batch_statistic}); got a batch of {shape[0]}."
                )
        for kind, group in (
            ("global", shapes[:NUM_GLOBAL_CROPS]),
            ("local", shapes[NUM_GLOBAL_CROPS:]),
        ):
            for i, shape in enumerate(group):
                if tuple(shape) != tuple(group[0]):
                    raise ValueError(
                        f"{name}: all {kind} crops must have the same shape; "
                        f"{kind} crop 0 has {tuple(group[0])} and {kind} crop "
                        f"{i} has {tuple(shape)}."
                    )
        first = tuple(shapes[0])
        for shape in shapes[NUM_GLOBAL_CROPS:]:
            if (shape[0], shape[3]) != (first[0], first[3]):
                raise ValueError(
                    f"{name}: local crops must have the same batch size and "
                    f"channels as the global crops; got {tuple(shape)} and "
                    f"{first}."
                )
        return [tuple(s) for s in shapes]

    def check_crops(self, crops, num_local_crops):
        """Validates multi-crop views, returns `(global_crops, local_crops)`."""
        if not isinstance(crops, (tuple, list)):
            self.check_crop_shapes(tuple(getattr(crops, "shape", ())),
                                   num_local_crops)
        self.check_crop_shapes([tuple(c.shape) for c in crops], num_local_crops)
        global_crops = self.check_views(crops[:NUM_GLOBAL_CROPS])
        local_crops = tuple(crops[NUM_GLOBAL_CROPS:])
        if local_crops:
            local_crops = self.check_views(local_crops)
        return global_crops, local_crops

    def check_encoder_accepts(self, shapes):
        """Raises unless the encoder takes the global and the local crops'
        sizes (a fixed `image_shape` cannot take both)."""
        inputs = getattr(self.encoder, "inputs", None)
        if not inputs:
            return
        expected = tuple(inputs[0].shape)
        for shape in (shapes[0], shapes[-1]):
            if len(expected) == 4 and any(
                e is not None and e != s for e, s in zip(expected[1:], shape[1:])
            ):
                raise ValueError(
                    f"{type(self).__name__}: the encoder takes images of shape "
                    f"{expected} but the crops have shape {shape}. Build the "
                    "encoder with a free image size, e.g. `image_shape=(None, "
                    "None, 3)` (`keras_ssl.models.with_free_image_size`), so "
                    "that it accepts global and local crops."
                )

    # --- one batch of images (masked image models, tokenizers) -------------
    def split_image_inputs(self, inputs, extra_key=None):
        """`(images, extra or None)` from a tensor, a 1-tuple `(images,)`
        (what `multi_view_dataset(..., num_views=1)` yields) or, with an
        `extra_key`, a dict `{"images": ..., extra_key: ...}` (e.g. MAE's
        fixed masking noise).
        """
        name = type(self).__name__
        extra = None
        if isinstance(inputs, dict) and extra_key is None:
            raise ValueError(
                f"{name} takes a batch of images (a tensor or a 1-tuple), not "
                f"a dict; got keys {sorted(inputs)}."
            )
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - {"images", extra_key})
            if "images" not in inputs or unknown:
                raise ValueError(
                    f"{name} takes a dict with keys 'images' and optionally "
                    f"'{extra_key}'; got keys {sorted(inputs)}."
                )
            images, extra = inputs["images"], inputs.get(extra_key)
        elif isinstance(inputs, (tuple, list)):
            if len(inputs) != 1:
                raise ValueError(
                    f"{name} takes one batch of images (one view) per step; "
                    f"got {len(inputs)} views. Build inputs with "
                    "`multi_view_dataset(images, augment, num_views=1)`."
                )
            images = inputs[0]
        else:
            images = inputs
        return images, extra

    def check_image_batch(self, images, image_shape, patch_size=None):
        """Raises a clear `ValueError` unless `images` is a non-empty float
        batch `(B, H, W, C)` of `image_shape` (cut into `patch_size` px
        patches, when given)."""
        name = type(self).__name__
        shape = self._check_float_images(images, "the input")
        expected = tuple(image_shape)
        if tuple(shape[1:]) != expected:
            height, width, channels = expected
            patches = (
                f", cut into {patch_size}-px patches" if patch_size else ""
            )
            raise ValueError(
                f"{name}'s encoder takes {height}×{width} images with "
                f"{channels} channels (its `image_shape`{patches}); got a "
                f"batch of shape {shape}."
            )
        if shape[0] == 0:
            raise ValueError(f"{name} needs at least 1 image per batch; got 0.")

    def _check_float_images(self, images, what):
        """The static shape of `images`, a rank-4 float batch, or a clear
        `ValueError` naming `what` ("view 0", "the input")."""
        name = type(self).__name__
        shape = _static_shape(images) if hasattr(images, "shape") else ()
        if len(shape) != 4:
            raise ValueError(
                f"{name}: {what} must be a batch of images of rank 4 (batch, "
                f"height, width, channels); got shape {shape}."
            )
        dtype = keras.backend.standardize_dtype(images.dtype)
        if dtype not in _FLOAT_DTYPES:
            raise ValueError(
                f"{name}: {what} must hold float images in [0, 1]; got dtype "
                f"{dtype}. Convert with "
                "`tf.image.convert_image_dtype(images, tf.float32)`."
            )
        return shape

    @staticmethod
    def require_api(obj, names, role, example):
        """Raises a clear `ValueError` unless `obj` has every attribute in
        `names`: "{role} must be {example}; X has no a, b"."""
        missing = [name for name in names if not hasattr(obj, name)]
        if missing:
            raise ValueError(
                f"{role} must be {example}; {type(obj).__name__} has no "
                f"{', '.join(missing)}."
            )

    def check_patch_values(self, values, images, num_patches, what):
        """Raises unless `values` (a mask, masking noise) is `(B, N)`."""
        shape = tuple(values.shape)
        expected = (images.shape[0], num_patches)
        if len(shape) != 2 or shape[1] != expected[1] or (
            None not in (shape[0], expected[0]) and shape[0] != expected[0]
        ):
            raise ValueError(
                f"{type(self).__name__}'s {what} must have shape (batch, "
                f"num_patches) = {expected}; got {shape}."
            )


def freeze(layer):
    """Makes `layer` and every layer inside it non-trainable.

    Plain `layer.trainable = False` is not enough under TensorFlow for a
    layer built with `trainable=False` (e.g. deserialised from a saved
    model) whose sublayers are created in its constructor: TensorFlow's
    attribute tracking skips an assignment of the value the attribute
    already has, so Keras' setter never reaches the sublayers, which stay
    trainable (found with BEiT's tokenizer after `load_model`). The setter
    is called directly here.
    """
    keras.layers.Layer.trainable.fset(layer, False)
    return layer


def clone_as_target(model, input_shape=None, name=None):
    """A frozen copy of `model` with copied (not shared) weights.

    The target/teacher/key network of momentum methods (MoCo, BYOL, DINO)
    starts as a copy of the online network and then follows it by EMA. The
    copy is rebuilt from `get_config()` (functional models, keras-hub
    backbones, layers such as `MLPHead`), its weights are set from NumPy
    copies — never the same arrays: JAX donates buffers and would fail with
    "donate the same buffer twice" — and it is marked non-trainable, which
    must happen before `compile()`.

    Call it on a built model outside `fit` (e.g. in the method's `__init__`
    when the encoder is a built functional model): under JAX, `fit` builds an
    unbuilt model while tracing, where weights cannot be copied to NumPy.

    Args:
        model: a built `keras.Model` or `keras.layers.Layer`.
        input_shape: the input shape to build a copy of a layer with, when
            building from config does not build it.
        name: the copy's name (default: `"target_" + model.name`).
    """
    config = model.get_config()
    config["name"] = name or f"target_{model.name}"
    if not model.built and input_shape is None:
        raise ValueError(
            f"clone_as_target: {model.name} needs `input_shape` to be built."
        )
    # A name scope gives the copy's variables their own paths: under torch,
    # parameters are tracked by path, and a copy whose paths equal the online
    # network's would replace its entries (its gradients then never reset).
    with keras.name_scope(config["name"]):
        target = type(model).from_config(config)
        if not target.built:
            target.build(input_shape)
    target.set_weights([ops.convert_to_numpy(w) for w in model.weights])
    target.trainable = False
    return target


def cosine_schedule(step, total_steps, start, end):
    """`end − (end − start)·(cos(π·step/total_steps) + 1)/2`, clipped at the end.

    BYOL's target momentum 1 − (1 − τ_base)(cos(πk/K) + 1)/2 is
    `cosine_schedule(k, K, τ_base, 1.0)`; DINO uses it for its teacher
    momentum (0.996 → 1). `step` may be a tensor (e.g. the optimizer's
    iteration counter), so the schedule runs inside the jitted step.
    """
    progress = ops.minimum(
        ops.cast(step, "float32") / float(max(1, total_steps)), 1.0
    )
    return end - (end - start) * (ops.cos(progress * 3.141592653589793) + 1.0) / 2.0


def pool_features(features, encoder=None):
    """Global average pooling of feature maps or token sequences.

    A `(batch, d)` vector passes through; `(batch, tokens, d)` is averaged
    over tokens (after `encoder`'s prefix tokens, e.g. a ViT's class token)
    and `(batch, h, w, d)` over space, so that any backbone (ours and
    keras-hub's return feature maps or tokens) yields vectors.
    """
    rank = len(features.shape)
    if rank == 2:
        return features
    if rank == 3:
        return ops.mean(features[:, prefix_tokens(encoder):], axis=1)
    if rank == 4:
        return ops.mean(features, axis=(1, 2))
    raise ValueError(
        "The encoder must return features of rank 2, 3 or 4; got shape "
        f"{tuple(features.shape)}."
    )


def use_batch_statistics(network):
    """Makes a frozen network's batch norm use batch statistics in training.

    A Keras `BatchNormalization` with `trainable=False` runs in inference mode
    (moving statistics) even when called with `training=True`. Target
    networks (BYOL's target, MoCo's key encoder) normalise with the batch's
    statistics, as in the papers' code, so each batch-norm layer is marked
    trainable again while its variables (scale, offset, moving statistics)
    stay non-trainable: no optimizer sees them, and under `training=True` the
    layer normalises with batch statistics and updates its moving ones.
    """
    for layer in network._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
            for variable in layer.weights:
                variable.trainable = False


def with_free_image_size(encoder):
    """`encoder`, or a copy of it that takes images of any height and width.

    Multi-crop methods (DINO) feed the encoder global and local crops of
    different sides. An encoder whose config has a fixed `image_shape`
    `(H, W, C)` (e.g. `CIFARResNetBackbone(..., image_shape=(32, 32, 3))`) is
    rebuilt from its config with `image_shape=(None, None, C)` and, when
    built, given copies of its weights; an encoder without `image_shape` in
    its config, or whose height and width are already free, is returned as
    is.
    """
    config = encoder.get_config()
    shape = config.get("image_shape")
    if shape is None or len(shape) != 3 or (shape[0] is None and shape[1] is None):
        return encoder
    config["image_shape"] = (None, None, shape[2])
    free = type(encoder).from_config(config)
    if encoder.built:
        free.set_weights([ops.convert_to_numpy(w) for w in encoder.weights])
    return free
