"""Run the notebooks top to bottom into executed copies: python -m notebooks.run [NAME ...] [--output DIR].

Run it from the project root (or anywhere inside the project: each notebook moves to the folder with dvc.yaml)
after `dvc repro`. The committed notebooks stay without outputs; the executed copies, figures included, go to
--output (default outputs/notebooks/, git-ignored), to open in Jupyter.
"""

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m notebooks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help="notebooks to run, e.g. 02_results (default: all)")
    parser.add_argument("--output", default=str(HERE.parent / "outputs" / "notebooks"),
                        help="folder for the executed copies (default: outputs/notebooks)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take (default 1800)")
    return parser.parse_args(argv)


def notebook_paths(names: list[str]) -> list[Path]:
    """The named notebooks of this folder (a name with or without .ipynb), or all of them."""
    available = sorted(HERE.glob("*.ipynb"))
    paths = [HERE / f"{Path(name).stem}.ipynb" for name in names] or available
    if missing := [path.stem for path in paths if not path.exists()]:
        sys.exit(f"error: no notebook {', '.join(missing)} in {HERE}: pick from "
                 f"{', '.join(path.stem for path in available)}")
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    paths = notebook_paths(args.names)
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as err:
        sys.exit(f"error: running notebooks needs nbclient ({err}): run bash scripts/setup.sh, or pip install -e "
                 "'.[dev]'")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    # the kernels inherit it: MLflow's download progress bars would fill the saved outputs with dozens of lines
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for path in paths:
        notebook, target = nbformat.read(path, as_version=4), output / path.name
        client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(Path.cwd())}})
        try:
            client.execute()
        except CellExecutionError as err:
            sys.exit(f"error: {path.name} stopped at {err.ename}: {err.evalue} (the cells run so far, traceback "
                     f"included, are in {target}); run `dvc repro` first if data/index or mlflow.db is missing")
        finally:
            nbformat.write(notebook, target)
        print(f"{path.name} -> {target}", flush=True)


if __name__ == "__main__":
    main()
