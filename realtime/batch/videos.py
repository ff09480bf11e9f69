"""Which videos a batch labels: a folder, a glob or a text file of paths/URIs, each with a stable id (its partition)."""

import glob
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emotion.errors import DataError

VIDEO_SUFFIXES = (".avi", ".flv", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".webm", ".wmv")


@dataclass(frozen=True)
class Video:
    id: str  # file name and a hash of the URI: readable, and unique across folders
    uri: str  # an absolute local path, or a URI of a filesystem pyarrow reads (file://, s3://, gs://, hdfs://)


def video_id(uri: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", PurePosixPath(uri).stem)[:60]
    return f"{stem}-{hashlib.sha1(uri.encode()).hexdigest()[:8]}"


def list_videos(spec: str) -> list[Video]:
    """The videos a folder (searched recursively), a glob pattern, a video file or a text file of paths/URIs names,
    in order, each once."""
    path = Path(spec)
    if path.is_dir():
        uris = sorted(str(p.resolve()) for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    elif glob.has_magic(spec):
        uris = sorted(str(Path(p).resolve()) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    elif path.is_file():
        uris = [str(path.resolve())] if path.suffix.lower() in VIDEO_SUFFIXES else read_list(path)
    else:
        raise DataError(f"{spec} does not exist: give a folder of videos, a quoted glob, or a text file listing "
                        "video paths or URIs")
    if not uris:
        raise DataError(f"no videos found in {spec}: give a folder or glob of {'/'.join(VIDEO_SUFFIXES)} files, "
                        "or a text file listing them")
    return [Video(video_id(uri), uri) for uri in dict.fromkeys(uris)]


def read_list(path: Path) -> list[str]:
    """The paths and URIs of a text file, one a line (# comments and blank lines skipped); relative paths are taken
    from the file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the video list {path} ({err}): give a UTF-8 text file with one video path or "
                        "URI per line") from err
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [resolve(entry, path.parent) for entry in entries]


def resolve(entry: str, folder: Path) -> str:
    if entry.startswith("file://"):
        return entry.removeprefix("file://")
    return entry if "://" in entry else str((folder / entry).resolve())
