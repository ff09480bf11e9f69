"""scripts/train_on_gpu.sh as an accelerator machine runs it (JAX backend, a training-only index of a zip, offline
training into an export folder), here on JAX's CPU build with one epoch of tiny data."""

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from conftest import ROOT
from emotion.data.preprocess import to_model_input
from emotion.tracking import model_files, model_io

pytestmark = pytest.mark.slow


def test_gpu_script_trains_the_strong_recipe_on_jax_into_an_export_folder(kaggle_folder, tmp_path):
    archive = tmp_path / "train.tar.xz"  # as scripts/gpu_prepare.sh packs it: the train split only
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(kaggle_folder / "train", arcname="train")
    env = os.environ | {"PYTHON": sys.executable, "GPU_SKIP_INSTALL": "1", "GPU_ARCHIVE": str(archive),
                        "GPU_DATA": str(tmp_path / "data"), "GPU_INDEX": str(tmp_path / "index"),
                        "GPU_CHECKPOINTS": str(tmp_path / "checkpoints"), "KERAS_BACKEND": "jax"}
    export = tmp_path / "export"
    result = subprocess.run(["bash", "scripts/train_on_gpu.sh", str(export), "experiment=strong", "train.epochs=1",
                             "train.batch_size=8"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "index/metrics.json").read_text())["images"]["test"] == 0  # test stays here
    assert json.loads((export / "tags.json").read_text())["keras_backend"] == "jax"
    assert (export / "params.yaml").read_text().count("convs_per_block: 2") == 1
    # the JAX-trained weights load here (TensorFlow) and give the outputs recorded there
    model = model_io.load_model_files(export)
    expected = json.loads((export / model_io.EXPECTED).read_text())
    np.testing.assert_allclose(model.predict(to_model_input(model_files.probe_faces()), verbose=0), expected, atol=1e-4)
