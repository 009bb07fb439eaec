"""SimCLR ResNet-18 training speed: keras-ssl on each backend vs plain PyTorch.

    python benchmarks/speed_vs_torch.py [--steps 10] [--warmup 2]
        [--batch-size 256] [--image-size 32] [--backends tensorflow,jax,torch]
        [--compile] [--augment] [--repeats 3] [--json results.json]

Every row is its own process (`_workers.run_workers`), so peak resident
memory is per run and backends never share a process:

- `keras-<backend>`: keras-ssl's `SimCLR` (`make_method` of the default
  `PretrainConfig`: projection MLP `MLPHead((256,), 64)`, NT-Xent at τ = 0.2)
  around `CIFARResNetBackbone` with the ResNet-18 layout (`cifar_resnet18`:
  3×3 stride-1 stem, basic blocks 2-2-2-2 at W-2W-4W-8W filters, W = 64),
  compiled with keras-ssl's own optimizer (`make_vision_optimizer`: AdamW, warmup +
  cosine) and `jit_compile` where the backend allows it (TF, JAX; torch
  eager), trained with `model.fit` on fixed in-memory views.
- `torch`: the same network, head, loss and optimizer written by hand as a
  plain PyTorch loop (`nn.Module`, `torch.optim.AdamW`, the same schedule),
  on the same fixed views; `--compile` adds `torch+compile` (the forward and
  loss under `torch.compile`), `keras-torch+compile` (keras-ssl with
  `jit_compile=True`, i.e. `torch.compile` of Keras' train step) and
  `keras-tensorflow+graph` (a `tf.function` graph without XLA: TensorFlow's
  own oneDNN kernels). `--runners` picks rows by name.
- `--augment` adds `keras-<backend>+augment`: keras-ssl fed by its real
  tf.data two-view SimCLR augmentation pipeline (`make_views`) instead of
  fixed tensors (`--augment-backend`, default tensorflow).

Matching: both models have the same layers and shapes, so the parameter
counts must be equal (checked and printed: Keras trainable weights vs torch
`parameters()`, Keras non-trainable weights vs torch's float buffers, the
batch-norm moving statistics). Batch norm uses Keras' eps 1e-3 and momentum
0.9 (torch momentum 0.1) in both; AdamW has Keras' eps 1e-7. Both views go
through the encoder as one batch of 2N in both. Remaining differences, none
of which changes the work done: Keras pads stride-2 "same" convolutions
(0, 1) where torch pads (1, 1); initialisers are the nearest torch ones;
keras-ssl also logs two cheap metrics per step (positive similarity,
representation std).

Timing: `warmup` steps (compilation, tracing) run first and are excluded;
the clock runs from the end of the last warm-up step to the end of the last
step, with every step synchronised (Keras converts its logs to Python
numbers at each batch end; the torch loop calls `loss.item()`). images/s
counts source images (each with 2 views). The ratio is steps/s over the
plain (eager) torch loop's. Peak RSS is the process's `ru_maxrss`, which
includes the frameworks themselves (`rss_after_import_gib` in the JSON is
the resident size after the imports, before the model). On a GPU machine
everything runs on the GPU where the installed frameworks see one, and the
device's name and peak device memory are reported too.

`--repeats N` runs every row N times, interleaved (row 1..k, then again),
and reports the median steps/s with each repeat's in brackets. The report
ends with the targets: the best keras-ssl row ≥ 1.0× the fastest plain
torch row and ≥ 1.2× the eager one, no keras-ssl row below 0.8× the eager
one, and the torch backend's peak memory ≤ 1.5× plain torch's.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _workers import BACKENDS, run_workers  # noqa: E402

GIB = 1024**3
PLAIN = "torch"


# --- measurements shared by every runner -----------------------------------
def _rss_now():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB


def cpu_model():
    """The CPU's model name, from /proc/cpuinfo (or `platform`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _views(args):
    """The fixed pair of views, `(2, N, H, W, 3)` float32 in [0, 1]."""
    import numpy as np

    size = args.image_size
    x = np.random.default_rng(0).random((2, args.batch_size, size, size, 3))
    return x.astype("float32")


# keras-ssl's SimCLR recipe, written out so that the plain torch loop needs
# no keras-ssl (hence no TensorFlow) in its process; `_config` checks that
# the library's defaults still are these.
RECIPE = {
    "learning_rate": 2e-3,
    "weight_decay": 1e-4,
    "beta_2": 0.999,
    "epochs": 100,
    "warmup_epochs": 2,
    "projection_dim": 64,
    "projection_hidden_dims": (256,),
    "temperature": 0.2,
}


def _config():
    """keras-ssl's default SimCLR `PretrainConfig`, checked against RECIPE."""
    from keras_ssl.training import PretrainConfig

    config = PretrainConfig(method="simclr", backbone="cifar_resnet18")
    options = ("projection_dim", "projection_hidden_dims")
    found = {k: getattr(config, k) for k in RECIPE if k not in options}
    found.update({k: config.method_options[k] for k in options})
    if found != RECIPE:
        raise SystemExit(
            f"keras-ssl's SimCLR recipe changed: {found}; update RECIPE "
            "so that the torch loop matches it"
        )
    return config


def _filters(args):
    return tuple(args.width * m for m in (1, 2, 4, 8))


def _result(steps_per_second, args, **extra):
    return {
        "steps_per_second": steps_per_second,
        "images_per_second": steps_per_second * args.batch_size,
        "peak_rss_gib": _peak_rss() / GIB,
        **extra,
    }


# --- keras-ssl ---------------------------------------------------------------
def _keras_device():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return details.get("device_name", "GPU")
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return device.device_kind
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return "cpu"


def _keras_peak_device_memory():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"]
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return device.memory_stats()["peak_bytes_in_use"]
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated()
    except Exception:  # memory statistics are best effort
        return None
    return None


def count_keras_parameters(model):
    """`(trainable, non_trainable)` scalar counts of a built Keras model."""
    import math

    count = lambda ws: sum(math.prod(w.shape) for w in ws)  # noqa: E731
    return count(model.trainable_weights), count(model.non_trainable_weights)


def run_keras(args, compile_torch=False, augment=False, graph=False):
    """keras-ssl's SimCLR trained by `model.fit` under the current backend."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl.backbones import CIFARResNetBackbone
    from keras_ssl.training import make_method, make_views, make_vision_optimizer

    rss_after_import = _rss_now()
    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    size = args.image_size
    config = _config()
    config.batch_size = args.batch_size
    config.optimizer = args.optimizer
    encoder = CIFARResNetBackbone(
        _filters(args), (2, 2, 2, 2), image_shape=(size, size, 3)
    )
    model = make_method(config, encoder)
    total = args.warmup + args.steps
    model.compile(
        optimizer=make_vision_optimizer(config, steps_per_epoch=total),
        jit_compile=(backend != "torch" or compile_torch) and not graph,
    )
    if augment:
        images = np.random.default_rng(0).integers(
            0, 256, (max(4 * args.batch_size, 1024), size, size, 3), "uint8"
        )
        data = make_views(config, images, size).repeat()
    else:
        x = _views(args)
        data = tf.data.Dataset.from_tensors(((x[0], x[1]),)).repeat()

    times, losses = [], []

    class _Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())
            losses.append(float(logs["loss"]))

    model.fit(
        data, steps_per_epoch=total, epochs=1, verbose=0, callbacks=[_Clock()]
    )
    seconds = times[-1] - times[args.warmup - 1]
    trainable, non_trainable = count_keras_parameters(model)
    return _result(
        args.steps / seconds,
        args,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        rss_after_import_gib=rss_after_import / GIB,
        peak_device_gib=_gib(_keras_peak_device_memory()),
        device=_keras_device(),
        framework=f"keras {keras.__version__}, {backend}",
        losses=losses,
    )


def _gib(value):
    return None if value is None else value / GIB


# --- the plain PyTorch loop --------------------------------------------------
def build_torch_simclr(width=64, blocks=(2, 2, 2, 2), projection_dim=64,
                       hidden_dim=256):
    """The same SimCLR network as keras-ssl's, as a plain `torch.nn.Module`."""
    import torch
    from torch import nn

    def bn(channels, dims=2):
        cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        # Keras' BatchNormalization defaults: eps 1e-3, momentum 0.9.
        return cls(channels, eps=1e-3, momentum=0.1)

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = bn(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = bn(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout)
                )

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            s = x if self.shortcut is None else self.shortcut(x)
            return torch.relu(s + y)

    class SimCLRNet(nn.Module):
        def __init__(self):
            super().__init__()
            filters = [width * m for m in (1, 2, 4, 8)][: len(blocks)]
            layers = [
                nn.Conv2d(3, filters[0], 3, 1, 1, bias=False),
                bn(filters[0]),
                nn.ReLU(),
            ]
            cin = filters[0]
            for stage, (cout, n) in enumerate(zip(filters, blocks)):
                for block in range(n):
                    stride = 2 if stage > 0 and block == 0 else 1
                    layers.append(BasicBlock(cin, cout, stride))
                    cin = cout
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.encoder = nn.Sequential(*layers)
            # keras-ssl's MLPHead((256,), 64): Dense(no bias) → BN → ReLU → Dense.
            self.projector = nn.Sequential(
                nn.Linear(cin, hidden_dim, bias=False),
                bn(hidden_dim, dims=1),
                nn.ReLU(),
                nn.Linear(hidden_dim, projection_dim),
            )
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                elif isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x):
            return self.projector(self.encoder(x))

    return SimCLRNet()


def torch_nt_xent(z1, z2, temperature):
    """NT-Xent as keras-ssl's `nt_xent_loss`, in torch."""
    import torch

    z = torch.cat([z1, z2]).float()
    z = z * torch.rsqrt(z.square().sum(-1, keepdim=True).clamp_min(1e-12))
    n2 = z.shape[0]
    logits = (z @ z.T) / temperature
    eye = torch.eye(n2, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, -1e9)
    positives = (z * torch.roll(z, n2 // 2, 0)).sum(-1) / temperature
    return (torch.logsumexp(logits, -1) - positives).mean()


def count_torch_parameters(module):
    """`(parameters, float buffers)`: the counts that match Keras'
    `(trainable, non_trainable)` (batch norm's `num_batches_tracked`, an
    integer counter Keras has no counterpart of, is left out)."""
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return params, buffers


def _lr_schedule(config, steps_per_epoch):
    """keras-ssl's `make_vision_optimizer(config, steps_per_epoch)` schedule: linear
    warmup over `warmup_epochs`, cosine decay to 0 at `epochs` epochs."""
    import math

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, config.warmup_epochs * steps_per_epoch)
    base = config.learning_rate

    def lr(step):
        if step < warmup:
            return base * step / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return base * 0.5 * (1 + math.cos(math.pi * progress))

    return lr


def run_torch(args, compile=False):
    """The plain PyTorch training loop on the same model, loss and data."""
    import torch

    rss_after_import = _rss_now()
    config = argparse.Namespace(**RECIPE)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = build_torch_simclr(args.width, projection_dim=config.projection_dim,
                               hidden_dim=config.projection_hidden_dims[0])
    model = model.to(device).train()
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=config.learning_rate,
            betas=(0.9, config.beta_2),
            eps=1e-7,
            weight_decay=config.weight_decay,
        )
    elif args.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=0.9,
            weight_decay=config.weight_decay,
        )
    else:
        raise SystemExit(f"the torch loop has no {args.optimizer!r} optimizer")
    total = args.warmup + args.steps
    lr = _lr_schedule(config, total)
    x = torch.from_numpy(_views(args)).permute(0, 1, 4, 2, 3).contiguous()
    v1, v2 = x[0].to(device), x[1].to(device)
    temperature = config.temperature

    def loss_of(a, b):
        z1, z2 = model(torch.cat([a, b])).chunk(2)
        return torch_nt_xent(z1, z2, temperature)

    if compile:
        loss_of = torch.compile(loss_of)
    times, losses = [], []
    for step in range(total):
        for group in optimizer.param_groups:
            group["lr"] = lr(step)
        loss = loss_of(v1, v2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # synchronises, like Keras' logs
        times.append(time.perf_counter())
    seconds = times[-1] - times[args.warmup - 1]
    trainable, non_trainable = count_torch_parameters(model)
    cuda = device == "cuda"
    return _result(
        args.steps / seconds,
        args,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        rss_after_import_gib=rss_after_import / GIB,
        peak_device_gib=_gib(torch.cuda.max_memory_allocated()) if cuda else None,
        device=torch.cuda.get_device_name(0) if cuda else "cpu",
        framework=f"torch {torch.__version__}"
        + (", torch.compile" if compile else "")
        + f", {torch.get_num_threads()} threads",
        losses=losses,
    )


def run_runner(runner, args):
    """One row's measurement, in the current process."""
    if runner == PLAIN:
        return run_torch(args)
    if runner == PLAIN + "+compile":
        return run_torch(args, compile=True)
    if runner.startswith("keras-"):
        return run_keras(
            args,
            compile_torch=runner.endswith("+compile"),
            graph=runner.endswith("+graph"),
            augment=runner.endswith("+augment"),
        )
    raise SystemExit(f"unknown runner {runner!r}")


def runner_backend(runner):
    """The `KERAS_BACKEND` a runner's process gets."""
    if runner.startswith("keras-"):
        return runner[len("keras-"):].split("+")[0]
    return "torch"


def runners_of(args):
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in BACKENDS:
            raise SystemExit(f"unknown backend {b!r}: expected {BACKENDS}")
    if args.runners:
        return args.runners.split(",")
    runners = [f"keras-{b}" for b in backends]
    if args.compile and "torch" in backends:
        runners.append("keras-torch+compile")
    if args.compile and "tensorflow" in backends:
        runners.append("keras-tensorflow+graph")
    if args.augment:
        runners.append(f"keras-{args.augment_backend}+augment")
    runners.append(PLAIN)
    if args.compile:
        runners.append(PLAIN + "+compile")
    return runners


# --- the report --------------------------------------------------------------
def combine_repeats(rows):
    """One row from the repeats of a runner: the median steps/s (and its
    images/s), `steps_per_second_runs` with every repeat's, the largest
    peak memory; the first error if every repeat failed."""
    done = [r for r in rows if "error" not in r]
    if not done:
        return rows[0]
    rates = sorted(r["steps_per_second"] for r in done)
    median = statistics.median(rates)
    row = dict(done[0])
    row.update(
        steps_per_second=median,
        images_per_second=median * done[0]["images_per_second"]
        / done[0]["steps_per_second"],
        steps_per_second_runs=[r["steps_per_second"] for r in done],
        peak_rss_gib=max(r["peak_rss_gib"] for r in done),
    )
    devices = [r["peak_device_gib"] for r in done if r.get("peak_device_gib")]
    if devices:
        row["peak_device_gib"] = max(devices)
    return row


def targets(results):
    """The issue's targets over `{runner: row}` (medians): `{name: (value,
    goal, met)}`; names whose rows are missing are left out."""
    ok = {k: r for k, r in results.items() if "error" not in r}
    rate = {k: r["steps_per_second"] for k, r in ok.items()
            if "+augment" not in k}
    keras_rates = {k: v for k, v in rate.items() if k.startswith("keras-")}
    plain = {k: v for k, v in rate.items() if not k.startswith("keras-")}
    found = {}
    if keras_rates and plain:
        best = max(keras_rates.values())
        found["best keras-ssl / fastest plain torch"] = (
            best / max(plain.values()), 1.0)
        if PLAIN in plain:
            found["best keras-ssl / eager plain torch"] = (best / plain[PLAIN], 1.2)
            found["slowest keras-ssl / eager plain torch"] = (
                min(keras_rates.values()) / plain[PLAIN], 0.8)
    if "keras-torch" in ok and PLAIN in ok:
        found["keras-torch / plain torch peak RSS"] = (
            ok["keras-torch"]["peak_rss_gib"] / ok[PLAIN]["peak_rss_gib"], 1.5)
    return {name: (value, goal, value <= goal if "RSS" in name else value >= goal)
            for name, (value, goal) in found.items()}


def summarize(results, args):
    """The printed report (a string) of `{runner: result}`."""
    lines = []
    devices = sorted(
        {r["device"] for r in results.values() if "device" in r} - {"cpu"}
    )
    lines.append(
        f"SimCLR, CIFAR-stem ResNet-18 layout (blocks 2-2-2-2, filters "
        f"{'-'.join(map(str, _filters(args)))}), batch {args.batch_size} × 2 "
        f"views of {args.image_size}×{args.image_size}, {args.optimizer}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
        + (f", median of {args.repeats} repeats" if args.repeats > 1 else "")
    )
    lines.append(
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; "
        f"GPU: {', '.join(devices) if devices else 'none'}"
    )
    base = results.get(PLAIN, {}).get("steps_per_second")
    header = (
        f"{'runner':<24}{'steps/s':>9}{'images/s':>10}{'vs torch':>10}"
        f"{'peak RSS GiB':>14}{'params':>12}  device"
        + ("  (steps/s of each repeat)" if args.repeats > 1 else "")
    )
    lines += [header, "-" * len(header)]
    for runner, r in results.items():
        if "error" in r:
            lines.append(f"{runner:<24}  FAILED: {r['error']}")
            continue
        ratio = f"{r['steps_per_second'] / base:.2f}×" if base else "n/a"
        device = r["device"]
        if r.get("peak_device_gib") is not None:
            device += f" (peak {r['peak_device_gib']:.2f} GiB)"
        lines.append(
            f"{runner:<24}{r['steps_per_second']:>9.3f}"
            f"{r['images_per_second']:>10.1f}{ratio:>10}"
            f"{r['peak_rss_gib']:>14.2f}{r['trainable_params']:>12,}  {device}"
            + (f"  ({', '.join(f'{v:.3f}' for v in r['steps_per_second_runs'])})"
               if len(r.get("steps_per_second_runs", ())) > 1 else "")
        )
    counts = {
        (r["trainable_params"], r["non_trainable_params"])
        for r in results.values()
        if "error" not in r
    }
    if len(counts) == 1:
        (trainable, non_trainable), = counts
        lines.append(
            f"parameters: {trainable:,} trainable + {non_trainable:,} "
            "batch-norm statistics, equal in every runner"
        )
    else:
        lines.append(f"parameters DIFFER between runners: {sorted(counts)}")
    keras_rows = {
        k: r for k, r in results.items()
        if k.startswith("keras-") and "+augment" not in k and "error" not in r
    }
    torch_rows = {
        k: r for k, r in results.items()
        if not k.startswith("keras-") and "error" not in r
    }
    if keras_rows and torch_rows:
        best = max(keras_rows, key=lambda k: keras_rows[k]["steps_per_second"])
        fastest = max(torch_rows, key=lambda k: torch_rows[k]["steps_per_second"])
        ratio = (
            keras_rows[best]["steps_per_second"]
            / torch_rows[fastest]["steps_per_second"]
        )
        lines.append(
            f"best keras-ssl: {best}, {ratio:.2f}× the fastest plain torch loop "
            f"({fastest}): {'meets' if ratio >= 1.0 else 'MISSES'} the ≥ 1.0× goal"
        )
    for name, (value, goal, met) in targets(results).items():
        sign = "≤" if "RSS" in name else "≥"
        lines.append(f"target {name}: {value:.2f}× ({sign} {goal}×: "
                     f"{'met' if met else 'MISSED'})")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--width", type=int, default=64,
        help="filters of the first stage (64: ResNet-18; small for tests)",
    )
    parser.add_argument("--optimizer", default="adamw", choices=("adamw", "sgd"))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--compile", action="store_true",
                        help="add torch.compile rows (plain torch, keras-torch)")
    parser.add_argument("--augment", action="store_true",
                        help="add a row fed by keras-ssl's tf.data augmentation")
    parser.add_argument("--augment-backend", default="tensorflow")
    parser.add_argument("--runners", default=None,
                        help="only these rows, e.g. keras-tensorflow+graph,torch")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of every row (median and range reported)")
    parser.add_argument("--json", default=None, help="also write results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runner", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--warmup, --steps and --repeats must be >= 1")
    if args.worker:
        print(json.dumps(run_runner(args.runner, args)))
        return None

    # Memory figures on a GPU: allocate as needed instead of up front.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    runs = {runner: [] for runner in runners_of(args)}
    # Repeats interleave the runners, so that a slow spell of the machine
    # falls on every row alike.
    for repeat in range(args.repeats):
        for runner in runs:
            worker_args = argparse.Namespace(**vars(args))
            worker_args.runner = runner
            backend = runner_backend(runner)
            try:
                runs[runner].append(run_workers(
                    __file__, worker_args, [backend],
                    exclude=("worker", "backends", "json", "compile", "augment",
                             "repeats", "runners"),
                )[backend])
            except SystemExit as error:
                runs[runner].append({"error": str(error)})
            print(f"  {runner} (repeat {repeat + 1}/{args.repeats}): done",
                  file=sys.stderr, flush=True)
    results = {runner: combine_repeats(rows) for runner, rows in runs.items()}
    report = summarize(results, args)
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "config": {
                        k: v for k, v in vars(args).items()
                        if k not in ("worker", "runner", "json")
                    },
                    "cpu": cpu_model(),
                    "cpu_count": os.cpu_count(),
                    "results": results,
                },
                f,
                indent=2,
            )
    return results


if __name__ == "__main__":
    main()
