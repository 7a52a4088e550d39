"""End-to-end: the DVC pipeline in a throwaway copy of the repo, on a small demo corpus and an AI Hub layout."""

import pandas as pd
import pytest

from aihub_files import hex_id, make_row, write_release, write_wav
from pipeline_repo import PipelineRepo

pytestmark = pytest.mark.e2e

SMALL_DEMO = {"size": 150}


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory):
    repo = PipelineRepo.copy_of_this_repo(tmp_path_factory.mktemp("koemo-e2e"))
    repo.set_params(demo=SMALL_DEMO)
    repo.commit("small demo")
    repo.dvc("repro", "labels")
    return repo


def test_repro_labels_on_demo_then_status_clean(demo_repo):
    assert demo_repo.status_is_clean("labels")
    corpus = demo_repo.metrics("corpus")
    assert corpus["rows_read"] == SMALL_DEMO["size"] == corpus["rows_kept"] + corpus["rows_dropped"]
    labels = demo_repo.metrics("labels")
    for key in ("rows_in", "rows_kept", "dropped", "class_counts", "ties", "fleiss_kappa"):
        assert key in labels
    table = pd.read_parquet(demo_repo.root / "data/labels.parquet")
    assert set(table["label"]) == {"angry", "happiness", "neutral", "sadness"}
    assert set(table["split"]) == {"train", "test"}
    # a second repro does nothing
    assert "Stage 'labels' didn't change" in demo_repo.dvc("repro", "labels").stdout


def test_aihub_source_on_a_release_shaped_directory(tmp_path_factory):
    repo = PipelineRepo.copy_of_this_repo(tmp_path_factory.mktemp("koemo-aihub"))
    raw = repo.root / "data/raw/aihub"
    emotions = [("Angry", 2), ("Happiness", 2), ("Neutral", 0), ("Sadness", 1)]
    rows = {"4차_14606.csv": [], "5차년도.csv": [], "5차년도_2차_19374.csv": []}
    releases = list(rows)
    for i in range(120):
        emotion = emotions[i % 4]
        ann = [emotion] * 4 + [("Surprise", 0)]  # neutral rows: 0–0 tie broken by votes
        rows[releases[i % 3]].append(make_row(hex_id(i), f"문장 {i % 40}번", ann, situation=emotion[0].lower()))
        if i != 7:  # one row (in 5차년도) without its wav, as in the real releases
            folder = {"4차_14606.csv": "4차년도", "5차년도.csv": "5차년도/5차_wav", "5차년도_2차_19374.csv": "5차년도_2차"}
            write_wav(raw / folder[releases[i % 3]] / f"{hex_id(i)}.wav", seconds=0.2, seed=i)
    write_release(raw / "4차_14606.csv", rows["4차_14606.csv"], "cp949")
    write_release(raw / "5차년도.csv", rows["5차년도.csv"], "utf-8-sig")
    write_release(raw / "5차년도_2차_19374.csv", rows["5차년도_2차_19374.csv"], "cp949", squeeze_4th=True)
    repo.set_params(data={"source": "aihub"})
    repo.dvc("repro", "labels")
    corpus = repo.metrics("corpus")
    assert corpus["rows_read"] == 120 and corpus["rows_kept"] == 119
    assert corpus["dropped_by_reason"]["missing_wav"] == 1
    assert corpus["kept_by_release"] == {"4차년도": 40, "5차년도": 39, "5차년도_2차": 40}
    table = pd.read_parquet(repo.root / "data/labels.parquet").set_index("wav_id")
    for i in (0, 1, 2, 3, 50):
        assert table.loc[hex_id(i), "label"] == ["angry", "happiness", "neutral", "sadness"][i % 4]
    assert repo.status_is_clean("labels")
