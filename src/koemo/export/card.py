"""The export's model card: README.md in the Hugging Face convention (YAML front matter, then sections).

Every number comes from the report files the stages wrote; nothing is typed in. Limits are stated from the
protocol itself (speaker independence, the data source, tiny stand-in encoders), not from hope.
"""

from __future__ import annotations

from typing import Any, Mapping

DESCRIPTIONS = {"text": "fine-tuned text encoder + linear head", "audio": "ResNet on log-mel spectrograms",
                "multimodal": "Conv1D over [sentence embedding ‖ mel means]", "wav2vec2": "layer-weighted SSL features → MLP",
                "fusion": "gated fusion of sentence embedding and SSL features", "tfidf": "Kiwi morpheme + char TF-IDF → logistic regression",
                "egemaps": "eGeMAPS functionals → MLP", "stack": "meta-learner over the base models' probabilities"}


def _ci(ci: Mapping[str, Any] | None, key: str) -> str:
    if not ci or key not in ci:
        return "–"
    v = ci[key]
    return f"{v['point']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]"


def _groups(per_group: Mapping[str, Any]) -> list[str]:
    rows = []
    for attribute in ("gender", "age"):
        for group, value in (per_group or {}).get(attribute, {}).items():
            if value.get("too_few_rows"):
                rows.append(f"| {attribute} | {group} | {value['rows']} | too few rows |")
            else:
                rows.append(f"| {attribute} | {group} | {value['rows']} | {value['ua']:.3f} |")
    return rows


def model_card(manifest: Mapping[str, Any], params: Mapping[str, Any], metrics: Mapping[str, Any],
               stack: Mapping[str, Any], asr: Mapping[str, Any]) -> str:
    classes = manifest["classes"]
    lineage = manifest["lineage"]
    protocol = stack.get("protocol") or next((m.get("protocol") for m in metrics.values() if m.get("protocol")), {})
    sources = {key: entry.get("source") for key, entry in lineage["encoders"].items()}
    tiny = any(str(s) == "local-tiny" for s in sources.values())
    data_source = protocol.get("data_source", params.get("data", {}).get("source"))
    ci = stack.get("test_ci_by_model", {})
    level = next((v.get("level") for v in ci.values() if isinstance(v, dict) and "level" in v), None)
    front = ["---", "language: ko", "library_name: koemo", "pipeline_tag: audio-classification",
             "tags: [speech-emotion-recognition, text-classification, korean, koemo]", "license: other",
             "---", ""]
    out = front + [
        "# koemo: Korean speech emotion recognition (text + audio + both)", "",
        f"Classifies a Korean utterance (a wav and/or its transcript) into {len(classes)} emotions: "
        f"{', '.join(f'`{c}`' for c in classes)}. Seven base models and a stacked meta-learner; "
        "`koemo predict --model THIS_FOLDER --wav clip.wav [--text ...]` or `koemo serve --model THIS_FOLDER`.", "",
        "## Intended use", "",
        "Research and teaching on Korean speech emotion recognition with the AI Hub \"감정 분류를 위한 대화 음성 "
        "데이터셋\" (or data recorded the same way): comparing text, audio and multimodal models under one split. "
        "Not for decisions about people (hiring, health, policing, credit): emotion labels are annotators' "
        "perceptions of acted or conversational speech, not what a speaker feels.", "",
    ]
    if tiny or data_source == "demo":
        out += ["> **This export was trained on the embedded synthetic demo corpus and/or with tiny random-init "
                "stand-in encoders (`local-tiny`).** Its numbers show that the pipeline works, not how well any real "
                "model recognises emotion. Train on the real data with real encoders (`make aihub`) before using it.", ""]
    out += ["## Labels", "", "| id | label |", "|---|---|"] + [f"| {i} | {c} |" for i, c in enumerate(classes)] + [""]
    out += [f"## Results (held-out test set{f', {level:.0%} bootstrap intervals' if level else ''})", "",
            "| model | what it is | UA | WA | macro-F1 |", "|---|---|---|---|---|"]
    for model in [*manifest["models"], "stack"]:
        out.append(f"| {model} | {DESCRIPTIONS.get(model, '')} | {_ci(ci.get(model), 'ua')} | "
                   f"{_ci(ci.get(model), 'accuracy')} | {_ci(ci.get(model), 'macro_f1')} |")
    baseline = stack.get("comparison_test", {}).get("majority_baseline")
    if baseline:
        out.append(f"| majority class | always the most frequent training class | {baseline['ua']:.3f} | "
                   f"{baseline['accuracy']:.3f} | {baseline['macro_f1']:.3f} |")
    out += ["", "UA: unweighted accuracy (mean per-class recall); WA: accuracy. Intervals resample the test set's "
            "split groups (a sentence with all its rows).", ""]
    per_group = stack.get("per_group")
    if per_group:
        out += ["### Per group (the stack, test rows)", "", "| attribute | group | rows | UA |", "|---|---|---|---|"]
        out += _groups(per_group)
        gap = per_group.get("largest_gap")
        if gap:
            out += ["", f"Largest UA gap: {gap['attribute']} {gap['higher']} vs {gap['lower']}: {gap['ua_gap']:.3f}."]
        out.append("")
    if asr:
        test = asr.get("test", {})
        out += ["### Speech recognition (a wav without text)", "",
                f"`{asr.get('asr')}` ({asr.get('source')}), language `{asr.get('language')}`: test CER "
                f"{test.get('cer', float('nan')):.3f}, WER {test.get('wer', float('nan')):.3f} over {test.get('rows')} "
                "rows against the corpus transcript." + (f" {asr['note']}." if asr.get("note") else ""), ""]
    out += ["## Protocol and its limits", "",
            f"- Data source: `{data_source}`; test share {protocol.get('test_size')}, split grouped by "
            f"`{protocol.get('split_group_by')}` (seed {protocol.get('split_seed')}), {protocol.get('test_rows')} test rows "
            f"in {protocol.get('test_resampling_units')} groups.",
            "- Speaker-independent: " + ("yes: no test speaker was heard in training." if protocol.get("speaker_independent")
                                         else "**no**: test speakers also speak in the training rows; expect lower "
                                              "scores on new voices."),
            f"- Text the text models were trained on: `{lineage.get('text_source')}` "
            "(transcript: the corpus' own; asr: a speech recognizer's). At prediction time a wav without text is "
            "transcribed by the exported ASR model when there is one.",
            "- Base models: K-fold out-of-fold training; each model's answer is the mean over its fold models; the "
            "stack was fit on the out-of-fold probabilities only.",
            "- Audio models read a fixed crop of each clip (see params.yaml `audio`); text models read at most "
            "`encoders.<name>.max_length` tokens. `koemo predict` notes both when they apply.", ""]
    git = lineage.get("git", {})
    out += ["## Lineage", "",
            f"- koemo git revision: `{git.get('commit')}`" + (" (with uncommitted changes)" if git.get("dirty") else ""),
            "- Params: `params.yaml` in this folder (exactly what the models were trained with).",
            "- Encoders and ASR (registry entry → what the weights are):"]
    for key, entry in lineage["encoders"].items():
        revision = entry.get("revision")
        out.append(f"  - `{key}`: {entry.get('source')}" + (f" @ `{revision}`" if revision else ""))
    out.append("- Data fingerprint:")
    for name, digest in lineage.get("data", {}).items():
        out.append(f"  - `{name}`: {', '.join(f'{k} {v}' for k, v in digest.items())}")
    out += ["- Every file's sha256: `koemo-export.json` (`files`).", "",
            "## Files", "", "- `data/models/<model>/fold<k>/`: fold weights (safetensors; TF-IDF: JSON vocabulary + "
            "safetensors coefficients); `data/models/stack/meta.json`: the meta-learner.",
            "- `weights/<section>/<name>/`: the encoders' and the ASR model's weights and tokenizers.",
            "- `params.yaml`: feature settings and registry; `reports/`: the numbers above.", ""]
    return "\n".join(out)


