"""Where the files shipped beside the code are, conf/ and the model folders in models/: in a checkout, or inside an
installed wheel, which carries them as fer_pipeline/conf and fer_pipeline/models (see pyproject.toml)."""

import os
from pathlib import Path

DEFAULT_MODEL = "accurate"  # models/<DEFAULT_MODEL>: the shipped model used when no model is given

BESIDE_CODE = Path(__file__).resolve().parents[1]  # a checkout, or site-packages for an installed wheel
WHEEL_DATA = "fer_pipeline"  # the folder pyproject.toml maps conf/ and models/ into


def checkout() -> Path | None:
    """The checkout this code runs from (dvc.yaml beside the packages), or None for an installed wheel."""
    return BESIDE_CODE if (BESIDE_CODE / "dvc.yaml").is_file() else None


def workspace() -> Path:
    """The folder that relative local stores (the MLflow database and artifacts) belong to: the working directory,
    or the project whose experiment DVC runs in a temporary copy (--queue, --temp), which DVC names in DVC_ROOT;
    the copy is deleted when the experiment ends."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd())


def project_path(*parts: str) -> Path:
    """A shipped file or folder, e.g. project_path("conf"): in the checkout, else where the wheel installed it."""
    return (checkout() or BESIDE_CODE / WHEEL_DATA).joinpath(*parts)


def default_model_dir() -> Path:
    """The shipped model folder used when no model is given (models/<DEFAULT_MODEL>)."""
    return project_path("models", DEFAULT_MODEL)
