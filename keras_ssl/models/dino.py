"""DINO: self-distillation with no labels (Caron et al., 2021)."""

import keras
from keras import ops

from keras_ssl.layers.dino_head import DINOHead
from keras_ssl.losses.dino import (
    dino_loss,
    teacher_entropy,
    teacher_temperature_schedule,
    update_center,
)
from keras_ssl.models.ssl_model import (
    NUM_GLOBAL_CROPS,
    SSLModel,
    clone_as_target,
    cosine_schedule,
    pool_features,
    use_batch_statistics,
)


@keras.saving.register_keras_serializable(package="keras_ssl")
class DINO(SSLModel):
    """DINO (Caron et al., 2021): a student distils a momentum teacher.

    A student g_θs (backbone + `DINOHead`) and a teacher g_θt of the same
    architecture see different crops of an image. The teacher sees the two
    global crops, the student every crop (global and local); the student is
    trained to match the teacher's centred and sharpened output distribution
    on every other crop, and the teacher is an EMA of the student. The
    paper's Algorithm 1, which `call`, `compute_loss` and `after_step` follow:

    ```
    # gs, gt: student and teacher networks
    # C: center (K)
    # tps, tpt: student and teacher temperatures
    # l, m: network and center momentum rates
    gt.params = gs.params
    for x in loader:  # load a minibatch x with n samples
        x1, x2 = augment(x), augment(x)  # random views
        s1, s2 = gs(x1), gs(x2)  # student output n-by-K
        t1, t2 = gt(x1), gt(x2)  # teacher output n-by-K
        loss = H(t1, s2)/2 + H(t2, s1)/2
        loss.backward()  # back-propagate
        # student, teacher and center updates
        update(gs)  # SGD
        gt.params = l*gt.params + (1-l)*gs.params
        C = m*C + (1-m)*cat([t1, t2]).mean(dim=0)
    def H(t, s):
        t = t.detach()  # stop gradient
        s = softmax(s / tps, dim=1)
        t = softmax((t - C) / tpt, dim=1)  # center + sharpen
        return - (t * log(s)).sum(dim=1).mean()
    ```

    With multi-crop, H runs over all pairs (teacher global crop, any other
    student crop) (`keras_ssl.losses.dino.dino_loss`). The student runs each
    resolution group as one batch (the 2 global crops together, the N local
    crops together); the teacher runs the 2 global crops as one batch and,
    as in DINO's code, normalises with batch statistics (its batch-norm
    scales and offsets are EMAs of the student's, its moving statistics its
    own). `compute_loss` adds the teacher's batch mean to `center_sum`
    (the teacher branch carries no gradient) and `after_step` moves the
    center once per optimizer step, from the mean of the step's batch (of
    its micro-batches with gradient accumulation); the teacher
    EMA, with momentum 0.996 → 1 on a cosine schedule of the optimizer's
    iterations, and the teacher temperature (linear warmup) move in
    `after_step`. Representations for downstream use are the student
    backbone's: `model.encoder`.

    Inputs: a tuple of `2 + num_local_crops` image batches in [0, 1], the 2
    global crops `(B, G, G, C)` first, then the local crops `(B, L, L, C)`,
    as made by `keras_ssl.data.multicrop.multi_crop_dataset`. The encoder
    must accept both sizes (e.g. `image_shape=(None, None, 3)`).

    Args:
        encoder: a `keras.Model` mapping images to features (feature maps
            and token sequences are average-pooled).
        output_dim: K, the head's output dimensions (paper: 65,536).
        hidden_dims: hidden widths of the head's MLP (paper: 2048, 2048).
        bottleneck_dim: the head's bottleneck (paper: 256).
        use_batch_norm_in_head: batch norm in the head's MLP (paper: False).
        norm_last_layer: fix the last layer's weight-norm gain to 1 (paper).
        num_local_crops: N, the number of local crops (reference code: 8).
        student_temp: student temperature τs (paper: 0.1).
        teacher_temp: teacher temperature τt after warmup (paper: 0.04–0.07).
        warmup_teacher_temp: τt at step 0 (paper: 0.04).
        warmup_teacher_temp_steps: steps of the linear warmup of τt (paper:
            30 epochs; 0 = `teacher_temp` from the start).
        center_momentum: m, the momentum of the center (paper: 0.9).
        teacher_momentum: l at step 0 (paper: 0.996).
        final_teacher_momentum: l at `total_steps` (paper: 1).
        total_steps: length of the cosine schedule of l, in optimizer steps;
            `None` keeps l at `teacher_momentum`.

    Metrics logged beside the loss: `teacher_entropy`, the mean entropy of
    the teacher's centred and sharpened distribution (log K under uniform
    collapse, 0 under one-hot collapse), and `teacher_student_kl`, the mean
    KL(P_t ‖ P_s) = loss − teacher_entropy (0 under either collapse); see
    `keras_ssl.callbacks.DINOCollapseMonitor`.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.callbacks import DINOCollapseMonitor
    from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset
    data = keras_ssl.data.load_image_data("digits")
    crops = multi_crop_dataset(data.x_unlabeled, MultiCropAugmentation(
        16, 8, num_local_crops=4, local_scale=(0.1, 0.4)), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(None, None, 3))
    model = DINO(encoder, output_dim=1024, hidden_dims=(512, 512),
                 bottleneck_dim=128, num_local_crops=4, total_steps=1000)
    model.compile(optimizer=keras.optimizers.AdamW(5e-4))
    model.fit(crops, epochs=2, callbacks=[DINOCollapseMonitor()])
    ```
    """

    batch_statistic = "the center is a batch statistic"
    nan_hints = (
        "teacher or student temperature too low, or a collapsed teacher "
        "(check teacher_entropy; lower the learning rate, raise "
        "center_momentum)",
    )

    def __init__(
        self,
        encoder,
        output_dim=65536,
        hidden_dims=(2048, 2048),
        bottleneck_dim=256,
        use_batch_norm_in_head=False,
        norm_last_layer=True,
        num_local_crops=8,
        student_temp=0.1,
        teacher_temp=0.07,
        warmup_teacher_temp=0.04,
        warmup_teacher_temp_steps=0,
        center_momentum=0.9,
        teacher_momentum=0.996,
        final_teacher_momentum=1.0,
        total_steps=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("student_temp", student_temp),
            ("teacher_temp", teacher_temp),
            ("warmup_teacher_temp", warmup_teacher_temp),
        ):
            if not value > 0:
                raise ValueError(f"DINO `{name}` must be positive, got {value}.")
        for name, value in (
            ("center_momentum", center_momentum),
            ("teacher_momentum", teacher_momentum),
            ("final_teacher_momentum", final_teacher_momentum),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"DINO `{name}` must be in [0, 1], got {value}.")
        if int(num_local_crops) != num_local_crops or num_local_crops < 0:
            raise ValueError(
                f"DINO `num_local_crops` must be an int >= 0, got {num_local_crops}."
            )
        if int(warmup_teacher_temp_steps) < 0:
            raise ValueError(
                "DINO `warmup_teacher_temp_steps` must be >= 0, got "
                f"{warmup_teacher_temp_steps}."
            )
        if total_steps is not None and int(total_steps) < 1:
            raise ValueError(
                f"DINO `total_steps` must be >= 1 or None, got {total_steps}."
            )
        if int(output_dim) < 1:
            raise ValueError(f"DINO `output_dim` must be >= 1, got {output_dim}.")
        self.encoder = encoder
        self.output_dim = int(output_dim)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.bottleneck_dim = int(bottleneck_dim)
        self.use_batch_norm_in_head = bool(use_batch_norm_in_head)
        self.norm_last_layer = bool(norm_last_layer)
        self.num_local_crops = int(num_local_crops)
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.warmup_teacher_temp_steps = int(warmup_teacher_temp_steps)
        self.center_momentum = float(center_momentum)
        self.teacher_momentum = float(teacher_momentum)
        self.final_teacher_momentum = float(final_teacher_momentum)
        self.total_steps = None if total_steps is None else int(total_steps)

        self.center = self.add_weight(
            shape=(self.output_dim,),
            initializer="zeros",
            trainable=False,
            aggregation="mean",
            name="center",
        )
        # The teacher's batch means since the last optimizer step (several
        # with gradient accumulation), which `after_step` folds into the
        # center once per step. Replicas' means average to the global mean.
        self.center_sum = self.add_weight(
            shape=(self.output_dim,),
            initializer="zeros",
            trainable=False,
            aggregation="mean",
            name="center_sum",
        )
        self.center_count = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="center_count",
        )
        # τt of the next step, moved by `after_step` (a variable, so that it
        # is saved and the jitted step reads its current value).
        self.current_teacher_temp = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self._teacher_temp_at(0)),
            trainable=False,
            aggregation="only_first_replica",
            name="current_teacher_temp",
        )
        self.head = self.teacher_encoder = self.teacher_head = None
        self.build_networks_early()
        self.add_metric_trackers("teacher_entropy", "teacher_student_kl")

    # --- schedules ------------------------------------------------------------
    def _teacher_temp_at(self, step):
        return teacher_temperature_schedule(
            step,
            self.warmup_teacher_temp_steps,
            self.warmup_teacher_temp,
            self.teacher_temp,
        )

    def _teacher_momentum_at(self, step):
        if self.total_steps is None:
            return self.teacher_momentum
        return cosine_schedule(
            step,
            self.total_steps,
            self.teacher_momentum,
            self.final_teacher_momentum,
        )

    # --- model ----------------------------------------------------------------
    def build_networks(self, feature_dim, image_shape=None):
        """Creates the student head and the teacher (a copy of the student)."""
        self.head = DINOHead(
            output_dim=self.output_dim,
            hidden_dims=self.hidden_dims,
            bottleneck_dim=self.bottleneck_dim,
            use_batch_norm=self.use_batch_norm_in_head,
            norm_last_layer=self.norm_last_layer,
            name="head",
        )
        self.head.build((None, feature_dim))
        # gt.params = gs.params: copies, frozen before compile().
        self.teacher_encoder = clone_as_target(
            self.encoder, image_shape, name=f"teacher_{self.encoder.name}"
        )
        self.teacher_head = clone_as_target(
            self.head, (None, feature_dim), name="teacher_head"
        )
        # The teacher normalises with batch statistics, as in DINO's code
        # (its teacher stays in training mode); its batch-norm scales and
        # offsets follow the student's by EMA, its moving statistics its own
        # forward passes.
        for network in (self.teacher_encoder, self.teacher_head):
            use_batch_statistics(network)

    def build(self, crops_shape):
        shapes = self.check_crop_shapes(crops_shape, self.num_local_crops)
        self.check_encoder_accepts(shapes)
        self.build_networks_late(shapes[0])
        self.built = True

    def student(self, images, training=False):
        return self.head(self.encode(images, training=training), training=training)

    def teacher(self, images, training=False):
        features = pool_features(self.teacher_encoder(images, training=training),
                                 self.teacher_encoder)
        return self.teacher_head(features, training=training)

    def call(self, crops, training=False):
        """Returns `(student_outputs, teacher_outputs)`: lists of `(B, K)`
        logits, the student's for every crop (globals first), the teacher's
        for the global crops."""
        global_crops, local_crops = self.check_crops(crops, self.num_local_crops)
        global_batch = ops.concatenate(global_crops, axis=0)
        student = list(
            ops.split(self.student(global_batch, training), NUM_GLOBAL_CROPS, 0)
        )
        if local_crops:
            local_batch = ops.concatenate(local_crops, axis=0)
            student += ops.split(
                self.student(local_batch, training), len(local_crops), axis=0
            )
        teacher = ops.split(
            ops.stop_gradient(self.teacher(global_batch, training)),
            NUM_GLOBAL_CROPS,
            axis=0,
        )
        return list(student), list(teacher)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        student, teacher = y_pred
        temp = ops.convert_to_tensor(self.current_teacher_temp)
        center = ops.convert_to_tensor(self.center)
        loss = dino_loss(student, teacher, center, self.student_temp, temp)
        entropy = teacher_entropy(teacher, center, temp)
        self.track(teacher_entropy=entropy, teacher_student_kl=loss - entropy)
        if training:
            # cat([t1, t2]).mean(dim=0), for the center update of
            # `after_step`; nothing in the loss's gradient reads it.
            batch_mean = ops.mean(
                ops.stop_gradient(ops.cast(ops.concatenate(teacher, 0), "float32")),
                axis=0,
            )
            self.center_sum.assign(self.center_sum + batch_mean)
            self.center_count.assign(self.center_count + 1.0)
        return loss

    def after_step(self):
        # The optimizer has counted this step: `iterations` = step + 1.
        step = ops.cast(self.optimizer.iterations, "float32")
        # gt.params = l*gt.params + (1-l)*gs.params, l from the schedule at
        # this step (l = teacher_momentum at the first step, as in DINO).
        momentum = self._teacher_momentum_at(step - 1.0)
        teacher, student = self.parameter_pairs(
            (self.teacher_encoder, self.teacher_head), (self.encoder, self.head)
        )
        self.ema_update(teacher, student, momentum)
        self.current_teacher_temp.assign(self._teacher_temp_at(step))
        # C = m*C + (1-m)*cat([t1, t2]).mean(dim=0), the mean over this
        # step's batch (its micro-batches' means, with accumulation).
        count = ops.maximum(ops.convert_to_tensor(self.center_count), 1.0)
        batch_mean = ops.convert_to_tensor(self.center_sum) / count
        self.center.assign(
            update_center(self.center, [batch_mean[None]], self.center_momentum)
        )
        self.center_sum.assign(ops.zeros_like(batch_mean))
        self.center_count.assign(0.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "output_dim": self.output_dim,
                "hidden_dims": list(self.hidden_dims),
                "bottleneck_dim": self.bottleneck_dim,
                "use_batch_norm_in_head": self.use_batch_norm_in_head,
                "norm_last_layer": self.norm_last_layer,
                "num_local_crops": self.num_local_crops,
                "student_temp": self.student_temp,
                "teacher_temp": self.teacher_temp,
                "warmup_teacher_temp": self.warmup_teacher_temp,
                "warmup_teacher_temp_steps": self.warmup_teacher_temp_steps,
                "center_momentum": self.center_momentum,
                "teacher_momentum": self.teacher_momentum,
                "final_teacher_momentum": self.final_teacher_momentum,
                "total_steps": self.total_steps,
            }
        )
        return config
