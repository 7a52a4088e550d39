"""The KEMDy20 reader on fixtures built from the corpus' public description (tests/kemdy_files.py)."""

import pytest

from kemdy_files import make_corpus, segment_id, write_session
from koemo.corpus.kemdy import NotAKEMDyCSV, clean_transcript, gender_of, read_kemdy_dir, summarize
from koemo.labels.aggregate import build_label_table


def test_every_row_kept_or_dropped_with_its_reason_and_session_gender_text_read(tmp_path):
    expected = make_corpus(tmp_path, sessions=2, per_session=8)
    result = read_kemdy_dir(tmp_path)
    summary = summarize(result, "kemdy20")
    assert {k: v for k, v in summary["dropped_by_reason"].items() if v} == expected
    assert summary["rows_read"] == 16 + 5 and summary["rows_kept"] == 16 and summary["sessions"] == 2
    manifest = result.manifest
    row = manifest.set_index("wav_id").loc[segment_id(1, 1, 2, "F", 2)]
    assert row["session"] == "Sess01" and row["gender"] == "여성" and row["emotion_1"] == row["emotion_5"] == "happiness"
    assert row["release"] == "KEMDy20" and "c/" not in row["text"] and "*" not in row["text"]
    assert manifest["age"].isna().all()
    tied = result.dropped[result.dropped["reason"] == "tied_total_evaluation"].iloc[0]
    assert tied["source_file"].endswith("Sess01_eval.csv") and "happy;neutral" in tied["detail"]
    assert 0 < summary["evaluators_agreeing_with_total"] < 1


def test_session_split_is_speaker_independent_and_labels_report_no_kappa(tmp_path):
    make_corpus(tmp_path, sessions=6, per_session=8)
    manifest = read_kemdy_dir(tmp_path).manifest
    split = {"test_size": 0.2, "folds": 2, "seed": 13, "group_by": "session"}
    table, metrics = build_label_table(manifest, "weighted", ["angry", "happiness", "neutral", "sadness"], split)
    sides = table.groupby("session")["fold"].nunique()
    assert (sides == 1).all(), "a session (speaker pair) on two sides of the split"
    assert metrics["fleiss_kappa"] is None and metrics["protocol"]["speaker_independent"]
    assert metrics["protocol"]["groups"] == 6 and metrics["protocol"]["test_has_every_class"]


def test_a_csv_without_the_two_header_rows_is_a_clear_error(tmp_path):
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "Sess01_eval.csv").write_text("wav_id,발화문\nx,안녕\n")
    with pytest.raises(NotAKEMDyCSV, match=r"Sess01_eval.csv.*Segment ID.*Total Evaluation"):
        read_kemdy_dir(tmp_path)


def test_speaker_codes_and_transcript_tags():
    assert gender_of("Sess03_script02_User005M_010") == "남성" and gender_of("Sess01_impro01_F001") == "여성"
    assert gender_of("Sess01_x") == ""
    assert clean_transcript("c/ 음 n/ 그래서 * 갔어 +") == "음 그래서 갔어"


def test_the_session_group_is_refused_for_a_corpus_without_sessions():
    import pandas as pd

    from koemo.labels.split import SplitError, make_groups

    with pytest.raises(SplitError, match="group_by=session.*KEMDy"):
        make_groups(pd.DataFrame({"text": ["가"], "age": [30], "gender": ["남성"]}), "session")


def test_a_kemdy20_copy_runs_through_corpus_labels_and_train_tfidf(tmp_path):
    """The stages exactly as dvc.yaml runs them (stage_argv), on a KEMDy20-shaped fixture: drops counted by reason,
    a session split, and the protocol and intervals in train_tfidf's report."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from pipeline_repo import REPO, stage_argv

    corpus = tmp_path / "kemdy"
    expected = make_corpus(corpus, sessions=10, per_session=12)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"] = {"source": "kemdy20", "dir": str(corpus)}
    params["split"].update(group_by="session", folds=2)
    params["train"].update(folds=2, valid_fraction=0.0)  # tfidf needs no early-stopping slice; 8 training sessions
    params["train_tfidf"].update(C_grid=[1.0], inner_folds=2, min_df=1)
    params["evaluation"].update(bootstrap=200, min_group_rows=5)
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONHASHSEED": "0"}
    for stage in ("corpus", "labels", "text_source", "train_tfidf"):  # text_source: text.source transcript reads no ASR
        done = subprocess.run(stage_argv(stage, params_path=work / "params.yaml"), cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{stage}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        print(done.stdout.strip())
    read = lambda name: json.loads((work / "reports" / f"{name}.json").read_text(encoding="utf-8"))  # noqa: E731
    assert {k: v for k, v in read("corpus")["dropped_by_reason"].items() if v} == expected
    assert read("labels")["protocol"]["split_group_by"] == "session" and read("labels")["protocol"]["groups"] == 10
    tfidf = read("train_tfidf")
    assert tfidf["protocol"]["data_source"] == "kemdy20" and tfidf["protocol"]["speaker_independent"]
    assert tfidf["test_ci"]["ua"]["lo"] <= tfidf["test"]["ua"] <= tfidf["test_ci"]["ua"]["hi"]
    assert set(tfidf["per_group"]["gender"]) == {"남성", "여성"} and set(tfidf["per_group"]["age"]) == {"unknown"}
    assert sys.executable
