"""Indexing: every source kind, the validation split, subsets, the cache, and every bad-input case."""

import shutil
import zipfile

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import PER_CLASS, compose_config
from emotion.data import dataset
from emotion.data.labels import CLASS_NAMES
from emotion.errors import DataError
from emotion.training import checkpoints


def index(source, *overrides):
    cfg = compose_config(f"data.source={source}", *overrides)
    return dataset.index_source(cfg.data)


def test_folder_zip_and_csv_give_the_same_images(kaggle_folder, kaggle_zip, fer_csv):
    results = [index(source) for source in (kaggle_folder, kaggle_zip, fer_csv)]
    for result in results:
        assert len(result.manifest) == 2 * PER_CLASS * len(CLASS_NAMES)
        assert result.rejects.empty
        assert result.faces_u8.shape == (len(result.manifest), 48, 48) and result.faces_u8.dtype == np.uint8
    hashes = [sorted(r.manifest["sha256"] + r.manifest["label"]) for r in results]
    assert hashes[0] == hashes[1] == hashes[2]


def test_manifest_rows_match_pixels_and_labels(kaggle_folder):
    result = index(kaggle_folder)
    row = result.manifest.iloc[5]
    on_disk = cv2.imread(str(kaggle_folder / row["ref"].replace("val/", "train/")), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(result.faces_u8[5], on_disk)
    assert CLASS_NAMES[row["label_id"]] == row["label"] == row["ref"].split("/")[-2]


def test_validation_split_is_stratified_seeded_apart_from_training_and_from_train_only(kaggle_folder):
    first, again = index(kaggle_folder), index(kaggle_folder)
    val = first.manifest[first.manifest["split"] == "val"]
    assert val["label"].value_counts().to_dict() == {name: 1 for name in CLASS_NAMES}
    assert all(ref.startswith("train/") for ref in val["ref"])
    assert (first.manifest["split"] == "test").sum() == PER_CLASS * len(CLASS_NAMES)
    pd.testing.assert_frame_equal(first.manifest, again.manifest)
    assert not index(kaggle_folder, "data.split_seed=7").manifest.equals(first.manifest)
    # the training's seed leaves it alone: an ensemble's members, trained with other seeds, hold out the same faces
    pd.testing.assert_frame_equal(index(kaggle_folder, "seed=7").manifest, first.manifest)


def test_max_per_class_subsets_train_and_keeps_the_test_split_whole(kaggle_folder):
    whole, result = index(kaggle_folder), index(kaggle_folder, "data.max_per_class=2")
    counts = result.manifest.assign(split=result.manifest["split"].replace("val", "train"))
    assert (counts.groupby(["split", "label"]).size()["train"] == 2).all()
    assert (counts.groupby(["split", "label"]).size()["test"] == PER_CLASS).all()
    assert dataset.test_split_hash(result.manifest) == dataset.test_split_hash(whole.manifest)


def test_test_split_hash_names_the_test_images_whatever_the_source_kind(kaggle_folder, kaggle_zip, fer_csv):
    manifests = [index(source).manifest for source in (kaggle_folder, kaggle_zip, fer_csv)]
    assert len({dataset.test_split_hash(manifest) for manifest in manifests}) == 1
    one_less = manifests[0].drop(index=manifests[0].index[manifests[0]["split"] == "test"][0])
    assert dataset.test_split_hash(one_less) != dataset.test_split_hash(manifests[0])


def test_cache_round_trip_and_test_split_only_on_request(kaggle_folder, workdir):
    result = index(kaggle_folder)
    dataset.write_index(result, "data/index")
    arrays = dataset.load_cache("data/index")
    assert set(arrays) == {"train", "val"}
    test_faces, test_ids = dataset.load_cache("data/index", splits=("test",))["test"]
    rows = (result.manifest["split"] == "test").to_numpy()
    assert np.array_equal(test_faces, result.faces_u8[rows])
    assert np.array_equal(test_ids, result.manifest.loc[rows, "label_id"])
    assert len(dataset.manifest_hash(dataset.load_manifest("data/index"))) == 64


def test_runs_record_the_source_the_index_read(kaggle_folder, workdir, monkeypatch):
    """FER2013_SOURCE stands in for the default data.source: params name the folder actually indexed."""
    monkeypatch.setenv("FER2013_SOURCE", str(kaggle_folder))
    cfg = compose_config()
    dataset.write_index(dataset.index_source(cfg.data), cfg.data.index_dir)
    monkeypatch.delenv("FER2013_SOURCE")  # the train stage may run in another shell
    assert cfg.data.source == "kaggle:msambare/fer2013"
    assert checkpoints.logged_config(cfg)["data"]["source"] == str(kaggle_folder)


def test_missing_cache_says_to_run_index(workdir):
    with pytest.raises(DataError, match="run the index stage first"):
        dataset.load_cache("nowhere")


def test_kaggle_source_downloads_through_kagglehub(kaggle_folder, monkeypatch):
    calls = []
    monkeypatch.setattr("kagglehub.dataset_download", lambda handle: calls.append(handle) or str(kaggle_folder))
    result = index("kaggle:msambare/fer2013")
    assert calls == ["msambare/fer2013"]
    assert len(result.manifest) == 2 * PER_CLASS * len(CLASS_NAMES)


def test_failed_download_says_how_to_use_local_data(monkeypatch):
    def offline(handle):
        raise ConnectionError("no network")

    monkeypatch.setattr("kagglehub.dataset_download", offline)
    with pytest.raises(DataError, match="could not download kaggle dataset msambare/fer2013: no network.*FER2013_SOURCE"):
        index("kaggle:msambare/fer2013")


def test_environment_overrides_only_the_default_source(kaggle_folder, fer_csv, monkeypatch):
    monkeypatch.setenv("FER2013_SOURCE", str(fer_csv))
    assert index("kaggle:msambare/fer2013").source == str(fer_csv)
    assert index(kaggle_folder).source == str(kaggle_folder)


def test_corrupt_wrong_size_and_colour_images_are_rejected_and_listed(folder_copy, workdir):
    (folder_copy / "train/happy/broken.jpg").write_bytes(b"not a jpeg at all")
    cv2.imwrite(str(folder_copy / "train/sad/big.png"), np.zeros((64, 64), np.uint8))
    colour = np.zeros((48, 48, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(folder_copy / "test/fear/colour.png"), colour)
    cv2.imwrite(str(folder_copy / "test/fear/gray_as_bgr.png"), np.full((48, 48, 3), 90, np.uint8))
    result = index(folder_copy)
    reasons = dict(zip(result.rejects["ref"], result.rejects["reason"]))
    assert reasons == {
        "train/happy/broken.jpg": "cannot decode image (corrupt or not an image); delete or re-extract it",
        "train/sad/big.png": "is 64x64, expected 48x48; resize or remove it",
        "test/fear/colour.png": "is a colour image (3 channels), FER2013 is grayscale; convert or remove it",
    }
    assert "test/fear/gray_as_bgr.png" in set(result.manifest["ref"])
    dataset.write_index(result, "data/index")
    assert pd.read_csv("data/index/rejects.csv")["ref"].tolist() == list(reasons)


def test_unknown_class_folder_fails_with_its_name(folder_copy):
    (folder_copy / "train/contempt").mkdir()
    shutil.copy(folder_copy / "train/happy/train_0.png", folder_copy / "train/contempt/x.png")
    with pytest.raises(DataError, match=r"unknown class folder train/contempt; FER2013 classes are angry, .*rename"):
        index(folder_copy)


def test_missing_split_fails(folder_copy):
    shutil.rmtree(folder_copy / "test")
    with pytest.raises(DataError, match="missing split 'test'"):
        index(folder_copy)


def test_empty_class_fails(folder_copy):
    shutil.rmtree(folder_copy / "test/disgust")
    with pytest.raises(DataError, match="class 'disgust' has no readable images in split 'test'"):
        index(folder_copy)


def test_class_with_only_corrupt_images_fails(folder_copy):
    for path in (folder_copy / "train/surprise").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="class 'surprise' has no readable images in split 'train'"):
        index(folder_copy)


def test_empty_source_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train/ or test/ folder found"):
        index(tmp_path / "empty")
    empty_zip = tmp_path / "empty.zip"
    zipfile.ZipFile(empty_zip, "w").close()
    with pytest.raises(DataError, match="no train/ or test/ folder found"):
        index(empty_zip)


def test_missing_source_path_fails(tmp_path):
    with pytest.raises(DataError, match=r"does not exist: set data.source \(or FER2013_SOURCE\)"):
        index(tmp_path / "nope.zip")


def test_malformed_csv_rows_are_rejected_with_their_line(fer_csv, tmp_path):
    table = pd.read_csv(fer_csv, dtype=str)
    table.loc[0, "pixels"] = "1 2 3"  # rows 0, 4, 8, 12 hold different classes: none is emptied
    table.loc[4, "emotion"] = "9"
    table.loc[8, "Usage"] = "Validation"
    table.loc[12, "pixels"] = " ".join(["300"] * 2304)
    broken = tmp_path / "fer2013.csv"
    table.to_csv(broken, index=False)
    result = index(broken)
    assert result.rejects["ref"].tolist() == [f"fer2013.csv:line {n}" for n in (2, 6, 10, 14)]
    assert result.rejects["reason"].str.contains("fix or delete the row").all()
    assert "2304 integers 0-255" in result.rejects["reason"][0]
    assert "emotion '9' is not a class id 0-6" in result.rejects["reason"][1]


def test_csv_without_required_columns_fails(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(DataError, match="missing column\\(s\\) emotion, pixels, Usage"):
        index(path)


def test_empty_csv_fails_in_one_line(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="fer2013.csv: the file is empty; expected fer2013.csv with a header"):
        index(path)


def test_a_csv_row_with_an_extra_field_is_rejected_alone(fer_csv, tmp_path):
    lines = fer_csv.read_text().splitlines()
    lines[3] += ",extra"  # line 4 of the file
    broken = tmp_path / "fer2013.csv"
    broken.write_text("\n".join(lines) + "\n")
    result = index(broken)
    assert result.rejects["ref"].tolist() == ["fer2013.csv:line 4"]
    assert result.rejects["reason"][0] == "has 4 fields, expected 3 (emotion,pixels,Usage); fix or delete the row"
    assert len(result.manifest) == len(lines) - 2  # every other row is indexed


def test_a_huge_zip_entry_is_rejected_without_being_read(kaggle_folder, tmp_path, monkeypatch):
    archive = tmp_path / "fer.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", kaggle_folder)
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train/happy/bomb.png", b"\0" * (8 << 20))  # 8 MB that compress to a few KB
    read = zipfile.ZipFile.read

    def read_small_only(self, name, *args):
        assert not name.endswith("bomb.png"), "the oversized entry was read"
        return read(self, name, *args)

    monkeypatch.setattr(zipfile.ZipFile, "read", read_small_only)
    result = index(archive)
    assert dict(zip(result.rejects["ref"], result.rejects["reason"])) == {
        "train/happy/bomb.png": "is 8,388,608 bytes, far more than a 48x48 face; delete it"}


def test_a_training_only_index_has_no_test_faces_and_the_same_training_data_hash(kaggle_zip, workdir):
    full = dataset.index_source(compose_config(f"data.source={kaggle_zip}").data)
    dataset.write_index(full, "full")
    train_only = dataset.index_source(compose_config(f"data.source={kaggle_zip}", "data.splits=[train]").data)
    dataset.write_index(train_only, "train_only")
    assert set(train_only.manifest["split"]) == {"train", "val"}
    assert dataset.manifest_hash(train_only.manifest) == dataset.manifest_hash(full.manifest)
    with pytest.raises(DataError, match="train_only has no test split: it was indexed with data.splits=\\[train\\]"):
        dataset.load_cache("train_only", splits=("test",))
