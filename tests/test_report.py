"""The headline metrics (the same keys for every model) and `koemo report` (tables from the report files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koemo.core.errors import UserError
from koemo.core.metrics import DATA_HEADLINE, MODEL_HEADLINE, data_headline, model_headline, write_metrics
from koemo.ops.report import BEGIN, END, compare, load_reports, render, update_file


def model_report(ua: float, lo: float, hi: float, oof: float = 0.6, collapsed: bool = False, params=None) -> dict:
    group = {"gender": {"남성": {"rows": 40, "ua": ua - 0.01, "accuracy": ua}, "여성": {"rows": 41, "ua": ua + 0.01,
                                                                                  "accuracy": ua}},
             "age": {"20s": {"rows": 19, "too_few_rows": True}, "30s": {"rows": 62, "ua": ua, "accuracy": ua}},
             "min_group_rows": 20, "largest_gap": {"attribute": "gender", "higher": "여성", "lower": "남성", "ua_gap": 0.02}}
    return {"test": {"ua": ua, "accuracy": ua + 0.01, "macro_f1": ua - 0.01, "per_class": {}, "confusion": {}},
            "oof": {"ua": oof}, "baseline": {"test": {"class": "neutral", "ua": 0.25, "accuracy": 0.4, "macro_f1": 0.14},
                                             "oof": {"ua": 0.25}},
            "collapsed": collapsed, "test_ci": {"level": 0.95, "method": "100 resamples, seed 0",
                                                "ua": {"point": ua, "lo": lo, "hi": hi}},
            "per_group": group, "params": params or {},
            "protocol": {"data_source": "demo", "split_group_by": "sentence", "speaker_independent": False,
                         "test_size": 0.2, "split_seed": 13, "test_rows": 81, "test_resampling_units": 70}}


def stack_report(ua: float = 0.8, select_by: str = "ua") -> dict:
    report = model_report(ua, ua - 0.05, ua + 0.05)
    del report["oof"]
    report.update(baseline={"class": "neutral", "ua": 0.25, "accuracy": 0.4, "macro_f1": 0.14}, learner="logistic",
                  C=0.1, select_by=select_by, choice={"nested_cv": {"stack": 0.77, "best_member": 0.7}},
                  paired={"stack_minus_best_member": {"best_member": "text", "ua": {"point": 0.1, "lo": 0.02, "hi": 0.18,
                                                                                     "share_le_0": 0.01}},
                          "text_minus_majority": {"ua": {"point": 0.45, "lo": 0.38, "hi": 0.52, "share_le_0": 0.0}}})
    return report


def test_every_model_and_the_stack_share_one_headline():
    text, stack = model_headline(model_report(0.7, 0.62, 0.78)), model_headline(stack_report())
    assert list(text) == list(stack) == list(MODEL_HEADLINE)
    assert text == {"test_ua": 0.7, "test_wa": 0.71, "test_macro_f1": 0.69, "test_ua_lo": 0.62, "test_ua_hi": 0.78,
                    "oof_ua": 0.6, "baseline_ua": 0.25, "collapsed": False}
    assert stack["oof_ua"] == 0.77 and stack["baseline_ua"] == 0.25 and stack["test_ua_hi"] == pytest.approx(0.85)
    assert model_headline(stack_report(select_by="macro_f1"))["oof_ua"] is None  # its nested CV scored macro-F1
    one_group = model_report(0.7, 0.62, 0.78)
    one_group["test_ci"]["ua"].update(lo=None, hi=None)
    assert model_headline(one_group)["test_ua_lo"] is None


def test_data_headlines_are_a_few_counts_and_an_unknown_stage_is_named():
    assert data_headline("corpus", {"rows_read": 3, "rows_kept": 2, "rows_dropped": 1, "audio_hours": 0.1,
                                    "dropped_by_reason": {"empty_text": 1}, "files": []}) == {
        "rows_read": 3, "rows_kept": 2, "rows_dropped": 1, "audio_hours": 0.1}
    assert data_headline("tiny_encoders", {"tiny-bert": {}, "tiny-electra": {}}) == {"encoders": 2}
    assert all(len(keys) <= 4 for keys in DATA_HEADLINE.values())
    with pytest.raises(KeyError, match="DATA_HEADLINE"):
        data_headline("nope", {})


def test_write_metrics_puts_the_headline_in_metrics_and_details_in_the_report(tmp_path):
    report = model_report(0.7, 0.62, 0.78)
    write_metrics(tmp_path / "metrics/m.json", model_headline(report), tmp_path / "reports/m.json", report,
                  tmp_path / "reports/runtime/m.json", {"seconds": 1.5})
    assert json.loads((tmp_path / "metrics/m.json").read_text()) == model_headline(report)
    assert json.loads((tmp_path / "reports/m.json").read_text())["per_group"]["age"]["20s"]["too_few_rows"]
    runtime = json.loads((tmp_path / "reports/runtime/m.json").read_text())
    assert runtime["seconds"] == 1.5 and "threads" in runtime


def reports_tree(root: Path, layout: str = "reports") -> Path:
    for stage, report in (("train_text", model_report(0.7, 0.62, 0.78, params={"text.model": "tiny-electra"})),
                          ("train_audio", model_report(0.5, 0.42, 0.58)), ("stack", stack_report())):
        path = root / layout / f"{stage}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return root


def test_report_table_groups_and_protocol(tmp_path):
    text = render(load_reports(None, reports_tree(tmp_path)))
    lines = text.splitlines()
    assert lines[0].startswith("| model | test UA [95 % CI] | WA | macro-F1 | vs baseline")
    assert "| majority baseline (neutral) | 0.250 | 0.400 | 0.140 |" in text
    assert "| text (tiny-electra) | 0.700 [0.620, 0.780] | 0.710 | 0.690 | +0.450 [+0.380, +0.520] |  |" in lines
    assert "| audio | 0.500 [0.420, 0.580] | 0.510 | 0.490 | +0.250 |  |" in lines  # no paired figure: the plain gap
    assert "+0.100 [+0.020, +0.180] vs text, ≤ 0 in 1% of resamples" in text
    assert "| text | 0.690 / 0.700 / 40 | 0.710 / 0.700 / 41 | too few (19) | 0.700 / 0.700 / 62 |" in text
    assert "Protocol: data demo; test split by sentence (NOT speaker-independent)" in text and "70 resampling units" in text


def test_report_reads_the_layout_before_reports_and_says_when_there_is_nothing(tmp_path):
    old = render(load_reports(None, reports_tree(tmp_path / "old", layout="metrics")))
    assert old == render(load_reports(None, reports_tree(tmp_path / "new")))
    with pytest.raises(UserError, match="dvc repro"):
        load_reports(None, tmp_path / "empty")


def test_compare_shows_differences_and_whether_intervals_overlap(tmp_path):
    base = load_reports(None, reports_tree(tmp_path / "a"))
    other = json.loads(json.dumps(base))
    other["text"]["test"]["ua"] = 0.9
    other["text"]["test_ci"]["ua"].update(lo=0.85, hi=0.95)   # clear of [0.62, 0.78]
    other["text"]["params"]["text.model"] = "tiny-roberta"
    del other["audio"]
    table = compare({"main": base, "exp-1": other})
    assert "| model | main: test UA [95 % CI] | exp-1: test UA [95 % CI] | Δ UA (exp-1 − main) | intervals overlap |" in table
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| ")}
    assert "| +0.200 | **no** |" in rows["| text"]
    assert "| absent |" in rows["| audio"]
    assert "| +0.000 | yes | +0.000 | +0.000 |" in rows["| stack"]
    assert "text (tiny-electra) → text (tiny-roberta)" in table


def test_update_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n", encoding="utf-8")
    assert update_file(readme, "| new |\n")
    assert readme.read_text(encoding="utf-8") == f"# title\n\nbefore\n{BEGIN}\n| new |\n{END}\nafter\n"
    assert not update_file(readme, "| new |")   # the same results: the file is left alone
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(UserError, match="BEGIN koemo report"):
        update_file(readme, "x")


def test_dvc_yaml_declares_headline_as_metric_and_report_and_runtime_as_cached_outputs():
    """`dvc metrics show` lists headlines only; reports and wall-clock restore from the run-cache with their run."""
    import re

    import yaml

    from pipeline_repo import REPO

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, body in stages.items():
        body = body.get("do", body)
        args = dict(re.findall(r"--(metrics|report|runtime) (\S+)", body["cmd"]))
        metrics = [next(iter(m)) for m in body["metrics"]]
        outs = [o if isinstance(o, str) else next(iter(o)) for o in body["outs"]]
        assert metrics == [args["metrics"]] and args["metrics"].startswith("metrics/"), name   # the headline alone
        assert args["report"] in outs and args["report"] == args["metrics"].replace("metrics/", "reports/", 1), name
        assert "runtime" not in args or args["runtime"] in outs and args["runtime"].startswith("reports/runtime/"), name
        assert not any("dvclive" in m for m in metrics), name  # per-fold scalars are plots, not metrics
