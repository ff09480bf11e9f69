"""The real FER2013 archive, when it is there: per-class counts as published."""

import pytest

from conftest import REAL_DATA, compose_config
from emotion.data import dataset

TRAIN = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830, "surprise": 3171}
TEST = {"angry": 958, "disgust": 111, "fear": 1024, "happy": 1774, "neutral": 1233, "sad": 1247, "surprise": 831}


@pytest.mark.real_data
def test_real_fer2013_counts():
    cfg = compose_config(f"data.source={REAL_DATA}")
    index = dataset.index_source(cfg.data)
    assert index.rejects.empty
    counts = index.manifest.assign(split=index.manifest["split"].replace("val", "train")).groupby(["split", "label"]).size()
    assert counts["train"].to_dict() == TRAIN and sum(TRAIN.values()) == 28709
    assert counts["test"].to_dict() == TEST and sum(TEST.values()) == 7178
    assert (index.manifest["split"] == "val").sum() == pytest.approx(0.1 * 28709, abs=10)
