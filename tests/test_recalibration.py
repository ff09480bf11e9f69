"""A trained model calibrated again (stages.calibrate) on the validation faces it held out, drawn again from its own
params and checked against its training-data hash: how an ensemble's members get their own class offsets."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import compose_config
from emotion.data import dataset
from emotion.errors import DataError, ModelInvalid
from emotion.evaluation import calibration
from emotion.tracking import model_io
from emotion.tracking.model_files import calibration_of, probe_faces
from emotion.training import offline, recalibration
from stages import calibrate as calibrate_stage
from test_ensemble import TINY


@pytest.fixture(scope="module")
def trained(kaggle_folder, tmp_path_factory):
    """A tiny model trained with its own split seed (not the default) into a folder, calibrated as training does."""
    root = tmp_path_factory.mktemp("trained")
    cfg = compose_config(f"data.source={kaggle_folder}", "train.epochs=1", "train.batch_size=8", *TINY,
                         "data.split_seed=7", "seed=3", f"data.index_dir={root}/index",
                         f"train.checkpoint_dir={root}/checkpoints")
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    offline.train_to_folder(cfg, dataset.load_cache(cfg.data.index_dir), root / "model")
    return root / "model"


def probe(folder) -> np.ndarray:
    return model_io.load_model_files(folder).predict(probe_faces(), verbose=0)


def test_the_temperature_fitted_again_on_the_held_out_faces_is_the_one_training_fitted(trained, kaggle_folder,
                                                                                          tmp_path):
    calibrate_stage.main([str(trained), str(tmp_path / "again"), "--source", str(kaggle_folder)])
    assert calibration_of(tmp_path / "again") == calibration_of(trained)  # the same faces, from the raw logits
    np.testing.assert_allclose(probe(tmp_path / "again"), probe(trained), atol=1e-5)
    assert {"params.yaml", "history.csv", "expected_predictions.json", "calibration.json"} <= {
        path.name for path in (tmp_path / "again").iterdir()}
    tags = json.loads((tmp_path / "again/tags.json").read_text())
    assert tags["calibrated_again_from"] == str(trained)


def test_class_offsets_are_baked_with_the_same_temperature(trained, kaggle_folder, tmp_path, monkeypatch):
    offsets = np.array([0.0, 0.5, 0.0, -0.25, 0.0, 0.3, 0.0])  # tiny data gains nothing by any: fixed ones here
    monkeypatch.setattr(calibration, "fit_class_bias", lambda probs, label_ids: offsets)
    calibrate_stage.main([str(trained), str(tmp_path / "offsets"), "--class-bias", "--source", str(kaggle_folder)])
    temperature, bias = calibration_of(tmp_path / "offsets")
    assert temperature == calibration_of(trained)[0] and bias.tolist() == offsets.tolist()
    np.testing.assert_allclose(probe(tmp_path / "offsets"), calibration.with_temperature(probe(trained), 1.0, bias),
                               atol=1e-5)


def test_a_model_that_recorded_the_whole_manifest_file_hash_is_recognised(trained, kaggle_folder, tmp_path):
    old = shutil.copytree(trained, tmp_path / "old")  # trained before 2026-11-27, as the shipped models were
    whole_file = hashlib.sha256((trained.parent / "index/manifest.csv").read_bytes()).hexdigest()
    tags = json.loads((old / "tags.json").read_text())
    (old / "tags.json").write_text(json.dumps(tags | {"data_manifest_sha256": whole_file}))
    record = recalibration.recalibrate(old, tmp_path / "out", str(kaggle_folder), False)
    assert record["temperature"] == calibration_of(trained)[0]


def test_another_split_than_the_one_it_held_out_and_an_ensemble_are_refused(trained, kaggle_folder, tmp_path):
    other = shutil.copytree(trained, tmp_path / "other")
    params = yaml.safe_load((other / "params.yaml").read_text())
    params["data"]["split_seed"] = 8  # another validation split than the one it held out
    (other / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(DataError, match=r"these are not the training faces of .* \(split seed 8;"):
        recalibration.recalibrate(other, tmp_path / "out", str(kaggle_folder), True)
    (other / "tags.json").write_text("{}")
    with pytest.raises(ModelInvalid, match="records no data_manifest_sha256"):
        recalibration.recalibrate(other, tmp_path / "out", str(kaggle_folder), True)
    (other / "ensemble.json").write_text("{}")
    with pytest.raises(ModelInvalid, match="is an ensemble: calibrate each member"):
        recalibration.recalibrate(other, tmp_path / "out", str(kaggle_folder), True)
