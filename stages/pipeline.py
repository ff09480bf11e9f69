"""`fer-pipeline`: run the DVC pipeline (index -> train -> evaluate) of this checkout: params.yaml composed from conf/
(whatever an earlier `dvc exp run -S` left in it), then `dvc repro`.

Arguments other than --help go to dvc repro, e.g. `fer-pipeline --force train` (see dvc repro --help).
"""

import argparse
import os
import sys
from pathlib import Path

from emotion.project_files import checkout
from stages import params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fer-pipeline", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _, dvc_args = parser.parse_known_args(argv)
    root = checkout()
    if root is None:
        sys.exit("error: fer-pipeline runs the DVC pipeline of a checkout, and this installation is not one (no "
                 "dvc.yaml beside the code): git clone the project, then bash scripts/pipeline.sh")
    # dvc.yaml's `python -m stages.<stage>` must be this environment's Python, not the first one on PATH
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    os.chdir(root)
    params.main([])
    os.execve(sys.executable, [sys.executable, "-m", "dvc", "repro", *dvc_args], env)


if __name__ == "__main__":
    main()
