"""Write params.yaml from conf/, exactly as `dvc exp run` composes it: `python -m stages.params` after editing conf/.

fer-pipeline (and scripts/pipeline.sh) runs it before `dvc repro`, so values an earlier `dvc exp run -S key=value` left in params.yaml
are not run again unnoticed.
"""

import argparse
import logging
from pathlib import Path

from omegaconf import OmegaConf

from emotion import config
from emotion.errors import user_errors_exit
from emotion.project_files import project_path
from stages.composition import compose_conf

log = logging.getLogger(__name__)


def composed_params() -> str:
    """conf/config.yaml composed and checked against the schema, as the YAML text DVC writes to params.yaml."""
    raw = compose_conf()
    config.validate(raw)  # a bad value fails here by name, before `dvc repro` starts anything
    OmegaConf.resolve(raw)
    return OmegaConf.to_yaml(raw)  # DVC's Hydra integration writes params.yaml with this same call


def write_params(path: str | Path) -> bool:
    """Write the composed conf/ to path; returns whether the file held anything else before."""
    path, text = Path(path), composed_params()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.params", description=__doc__)
    parser.add_argument("--output", default=str(project_path("params.yaml")), help="file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if write_params(args.output):
        log.info("%s rewritten from conf/ (it held other values, e.g. from an earlier `dvc exp run -S`)", args.output)
    else:
        log.info("%s already matches conf/", args.output)


if __name__ == "__main__":
    main()
