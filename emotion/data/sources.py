"""FER2013 sources (Kaggle-layout folder or zip, fer2013.csv, kagglehub download) -> decoded samples."""

import csv
import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from emotion.config import DEFAULT_SOURCE
from emotion.data.labels import CLASS_NAMES, CSV_EMOTION_NAMES
from emotion.data.preprocess import IMG_SIZE
from emotion.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
SOURCE_ENV = "FER2013_SOURCE"
KAGGLE_PREFIX = "kaggle:"
CSV_USAGE_SPLITS = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
CSV_COLUMNS = ("emotion", "pixels", "Usage")
MAX_IMAGE_BYTES = 1 << 20  # a 48x48 face takes a few KB in any format; larger entries are not read


@dataclass
class Sample:
    """One image of the source: its pixels (48x48 uint8) or, for a reject, why it was rejected."""

    split: str
    label: str
    ref: str  # path inside the source, or "fer2013.csv:line N"
    pixels: np.ndarray | None = None
    error: str | None = None


@dataclass
class Source:
    """An opened source: where it is, how many images it holds, and an iterator over them."""

    location: str
    count: int
    samples: Iterator[Sample]


def resolve_source(configured: str) -> str:
    """The source to read: data.source, unless it is the default and FER2013_SOURCE names another."""
    if configured == DEFAULT_SOURCE and os.environ.get(SOURCE_ENV):
        log.info("using %s=%s instead of the default %s", SOURCE_ENV, os.environ[SOURCE_ENV], DEFAULT_SOURCE)
        return os.environ[SOURCE_ENV]
    return configured


def open_source(location: str, splits: tuple[str, ...] = SPLITS) -> Source:
    """Open a folder, zip, fer2013.csv or kaggle:<owner>/<dataset> and list its images of the given splits."""
    if location.startswith(KAGGLE_PREFIX):
        return open_source(download_kaggle(location.removeprefix(KAGGLE_PREFIX)), splits)
    path = Path(location).expanduser()
    if not path.exists():
        raise DataError(
            f"data source {location} does not exist: set data.source (or {SOURCE_ENV}) to a Kaggle-layout "
            "folder or zip, a fer2013.csv, or kaggle:msambare/fer2013"
        )
    if path.is_dir():
        files = sorted(str(p.relative_to(path).as_posix()) for p in path.rglob("*") if p.is_file())
        layout = _kaggle_layout(files, location, splits)
        samples = (_too_large(*item, (path / item[2]).stat().st_size) or _decode(*item, (path / item[2]).read_bytes())
                   for item in layout)
        return Source(location, len(layout), samples)
    if zipfile.is_zipfile(path):
        return _open_zip(path, location, splits)
    if path.suffix.lower() == ".csv":
        return _open_csv(path, splits)
    raise DataError(f"data source {location}: not a folder, zip or .csv file; point data.source at FER2013")


def download_kaggle(handle: str) -> str:
    """Download a Kaggle dataset through kagglehub (cached by kagglehub) and return its local folder."""
    import kagglehub  # imported here: it reads credentials and settings at import time

    log.info("downloading kaggle dataset %s through kagglehub", handle)
    try:
        return kagglehub.dataset_download(handle)
    except Exception as err:  # kagglehub raises many types (network, auth, not found); all mean the same to a user
        raise DataError(
            f"could not download kaggle dataset {handle}: {err}. Check the network and Kaggle credentials, or set "
            f"{SOURCE_ENV} / data.source to a local folder, zip or fer2013.csv"
        ) from err


def _open_zip(path: Path, location: str, splits: tuple[str, ...]) -> Source:
    archive = zipfile.ZipFile(path)
    files = [info.filename for info in archive.infolist() if not info.is_dir()]
    layout = _kaggle_layout(files, location, splits)

    def samples() -> Iterator[Sample]:
        with archive:
            for item in layout:
                yield _too_large(*item, archive.getinfo(item[2]).file_size) or _decode(*item, archive.read(item[2]))

    return Source(location, len(layout), samples())


def _kaggle_layout(files: list[str], location: str, splits: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(split, label, file) for every image under <root>/<split>/<class>/ of the given splits; unknown class
    folders fail."""
    parts = [PurePosixPath(f).parts for f in files]
    parts = [p for p in parts if not any(s.startswith((".", "__MACOSX")) for s in p)]
    depth = _split_depth(parts)
    if depth is None:
        raise DataError(
            f"{location}: no train/ or test/ folder found; expected the Kaggle layout train/<class>/*.jpg and "
            "test/<class>/*.jpg (as in kaggle msambare/fer2013)"
        )
    layout = []
    for p in parts:
        if len(p) != depth + 3 or p[depth] not in splits:
            continue
        split, label = p[depth], p[depth + 1]
        if label not in CLASS_NAMES:
            raise DataError(
                f"{location}: unknown class folder {split}/{label}; FER2013 classes are "
                f"{', '.join(CLASS_NAMES)}: rename or remove that folder"
            )
        layout.append((split, label, "/".join(p)))
    return layout


def _split_depth(parts: list[tuple[str, ...]]) -> int | None:
    """How many folders deep the train/ and test/ folders sit (0 when at the top), or None."""
    depths = [i for p in parts for i, s in enumerate(p[:-2]) if s in SPLITS]
    return min(depths) if depths else None


def _too_large(split: str, label: str, ref: str, size: int) -> Sample | None:
    """A reject for a file too large to be a face (never read into memory), else None."""
    if size <= MAX_IMAGE_BYTES:
        return None
    return Sample(split, label, ref, error=f"is {size:,} bytes, far more than a 48x48 face; delete it")


def _decode(split: str, label: str, ref: str, data: bytes) -> Sample:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None:
        return Sample(split, label, ref, error="cannot decode image (corrupt or not an image); delete or re-extract it")
    return _checked(Sample(split, label, ref), img)


def _checked(sample: Sample, img: np.ndarray) -> Sample:
    """Accept a 48x48 uint8 grayscale image (or a colour one whose channels are equal), else reject it."""
    if img.ndim == 3:
        if not (img[..., :3] == img[..., :1]).all():
            sample.error = f"is a colour image ({img.shape[2]} channels), FER2013 is grayscale; convert or remove it"
            return sample
        img = img[..., 0]
    if img.dtype != np.uint8:
        sample.error = f"has {img.dtype} pixels, expected 8-bit; convert or remove it"
    elif img.shape != (IMG_SIZE, IMG_SIZE):
        sample.error = f"is {img.shape[1]}x{img.shape[0]}, expected {IMG_SIZE}x{IMG_SIZE}; resize or remove it"
    else:
        sample.pixels = np.ascontiguousarray(img)
    return sample


def _open_csv(path: Path, splits: tuple[str, ...]) -> Source:
    """fer2013.csv, read row by row: a malformed row becomes a reject, not a failure of the whole file."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            header = next(csv.reader(file), None)
            count = sum(1 for _ in csv.reader(file))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text CSV ({err}); expected fer2013.csv with emotion,pixels,Usage") from err
    if not header:
        raise DataError(f"{path}: the file is empty; expected fer2013.csv with a header emotion,pixels,Usage")
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected fer2013.csv with emotion,pixels,Usage")
    columns = [header.index(c) for c in CSV_COLUMNS]

    def samples() -> Iterator[Sample]:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            next(reader)
            for row in reader:
                ref = f"{path.name}:line {reader.line_num}"
                usage = row[columns[2]].strip() if len(row) == len(header) else ""
                if CSV_USAGE_SPLITS.get(usage, splits[0]) not in splits:
                    continue  # a split that was not asked for: neither kept nor rejected
                if len(row) != len(header):
                    yield Sample("?", "?", ref, error=f"has {len(row)} fields, expected {len(header)} "
                                 f"({','.join(header)}); fix or delete the row")
                else:
                    yield _csv_sample(ref, *(row[i] for i in columns))

    return Source(str(path), count, samples())


def _csv_sample(ref: str, emotion: str, pixels: str, usage: str) -> Sample:
    split = CSV_USAGE_SPLITS.get(usage.strip())
    label = CSV_EMOTION_NAMES.get(int(emotion)) if emotion.strip().isdigit() else None
    sample = Sample(split or "?", label or "?", ref)
    if label is None:
        sample.error = f"emotion {emotion!r} is not a class id 0-6; fix or delete the row"
    elif split is None:
        sample.error = f"Usage {usage!r} is not one of {', '.join(CSV_USAGE_SPLITS)}; fix or delete the row"
    else:
        try:
            values = np.array(pixels.split(), dtype=np.int64)
        except ValueError:
            values = np.array([-1])
        if values.size != IMG_SIZE * IMG_SIZE or values.min() < 0 or values.max() > 255:
            sample.error = (
                f"pixels must be {IMG_SIZE * IMG_SIZE} integers 0-255 separated by spaces; fix or delete the row"
            )
        else:
            sample.pixels = values.astype(np.uint8).reshape(IMG_SIZE, IMG_SIZE)
    return sample
