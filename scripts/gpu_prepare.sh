#!/usr/bin/env bash
# Fill what scripts/train_on_gpu.sh takes to an accelerator machine that has JAX (CUDA) but no Keras, Hydra or
# network: the missing pure-Python packages as wheels for its Python 3.12 in .whl/, and the training faces (the
# train split of a Kaggle-layout zip; the test split stays here for the final evaluation) in .gpu/. Both are
# git-ignored and never committed.
#   bash scripts/gpu_prepare.sh [FER2013 zip, default ../shared/data/fer2013.zip or $FER2013_SOURCE]
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="${1:-${FER2013_SOURCE:-../shared/data/fer2013.zip}}"
PYTHON="${PYTHON:-.venv/bin/python}"
mkdir -p .whl .gpu
# Keras and its needs that the machine lacks (versions as in requirements.lock); antlr4 4.9.3 is a source
# distribution only, built here into a pure-Python wheel.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  keras==3.15.1 namex==0.1.0 optree==0.20.0 hydra-core==1.3.8 omegaconf==2.3.0
"$PYTHON" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
"$PYTHON" - "$SOURCE" .gpu/fer2013-train.tar.xz <<'PY'
"""The train/ images of a Kaggle-layout zip, byte for byte, in one xz-compressed tar: 34 MB instead of the zip's
48 MB, since the 28,709 small JPEGs share their headers (what travels to the machine is limited to 64 MiB)."""
import io
import sys
import tarfile
import zipfile

with zipfile.ZipFile(sys.argv[1]) as source, tarfile.open(sys.argv[2], "w:xz") as target:
    for info in source.infolist():
        if "train/" in info.filename and not info.is_dir():
            entry = tarfile.TarInfo(info.filename[info.filename.index("train/"):])
            entry.size = info.file_size
            target.addfile(entry, io.BytesIO(source.read(info)))
PY
du -sh .whl .gpu/fer2013-train.tar.xz
