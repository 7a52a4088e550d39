"""`koemo export` → a folder that predicts alone (copied elsewhere, the workspace's data gone, another cwd), its model
card; `koemo serve` over that folder: the API's 4xx answers to bad uploads, and the page in headless Chromium
(upload a demo wav through the page's own file input, read the chart's bars, compare with `koemo predict`)."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_repo import REPO, koemo_in_process

pytestmark = pytest.mark.e2e
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
NOTES = Path(os.environ.get("KOEMO_NOTES_DIR", "")) if os.environ.get("KOEMO_NOTES_DIR") else None


def _outside_env(repo) -> dict:
    """The code (this checkout's src) but nothing of the workspace: no DVC, no params.yaml in cwd, hub offline."""
    return {**repo.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(repo.root / "src")}


def _predict(cwd: Path, env: dict | None, *args: str) -> dict:
    """`koemo predict ARGS --json` in `cwd`: a fresh process with `env`, or (env None) in this process."""
    if env is None:
        done = koemo_in_process("predict", *args, "--json", cwd=cwd, check=False)
    else:
        done = subprocess.run([sys.executable, "-m", "koemo", "predict", *args, "--json"], cwd=cwd, env=env,
                              capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def exported(demo_repo, tmp_path_factory):
    """The export, moved to a folder outside the repo; the expected answers computed in the workspace first."""
    labels = pd.read_parquet(demo_repo.root / "data/labels.parquet")
    row = labels[labels["split"] == "test"].iloc[0]
    place = tmp_path_factory.mktemp("elsewhere")
    clip = place / "clip.wav"
    shutil.copyfile(demo_repo.root / row["wav_path"], clip)
    expected = _predict(demo_repo.root, None, "--wav", str(clip), "--text", row["text"])
    speech_only = _predict(demo_repo.root, None, "--wav", str(clip))
    out = demo_repo.root.parent / f"{demo_repo.root.name}-export"
    done = demo_repo.koemo("export", str(out))
    assert "model card" in done.stdout
    model = place / "model"
    shutil.copytree(out, model)
    shutil.rmtree(out)
    return {"model": model, "clip": clip, "text": row["text"], "expected": expected, "speech_only": speech_only,
            "place": place}


def test_export_predicts_alone_from_a_copy_without_the_workspace(demo_repo, exported):
    model, clip = exported["model"], exported["clip"]
    assert not list(model.rglob("*.bin")) and not list(model.rglob("*.pkl"))
    assert sorted(p.name for p in (model / "data/models/text").glob("fold*/model.safetensors"))
    manifest = json.loads((model / "koemo-export.json").read_text())
    assert set(manifest["weights"]) == {"encoders.tiny-electra", "audio_encoders.tiny-wav2vec2", "asr_models.tiny-whisper"}
    data = demo_repo.root / "data"
    data.rename(demo_repo.root / "data.away")  # the repo's data gone: only the copy can answer
    try:
        got = _predict(exported["place"], _outside_env(demo_repo), "--model", str(model), "--wav", str(clip),
                       "--text", exported["text"])
        heard = _predict(exported["place"], _outside_env(demo_repo), "--model", str(model), "--wav", str(clip))
    finally:
        (demo_repo.root / "data.away").rename(data)
    for name, result in exported["expected"]["models"].items():
        np.testing.assert_allclose(list(got["models"][name]["probabilities"].values()),
                                   list(result["probabilities"].values()), atol=1e-5, err_msg=name)
    # a wav alone: the exported ASR model transcribes it, as in the workspace
    assert heard["transcript"] == exported["speech_only"]["transcript"] and heard["transcript"]
    assert heard["notes"][0].startswith("text_from_asr") and heard["models"]["text"] is not None
    assert heard["models"]["stack"] == exported["speech_only"]["models"]["stack"]
    assert demo_repo.status_is_clean()


def test_model_card_reports_results_protocol_and_lineage(exported):
    card = (exported["model"] / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlanguage: ko\n")
    for heading in ("## Intended use", "## Labels", "## Results", "### Per group", "## Protocol and its limits", "## Lineage"):
        assert heading in card, heading
    assert "| stack |" in card and "local-tiny" in card and "synthetic demo corpus" in card
    assert "Speaker-independent: **no**" in card  # the demo splits by sentence
    assert "data/labels.parquet" in card and "git revision" in card
    stack = json.loads((exported["model"] / "reports/stack.json").read_text())
    point = stack["test_ci_by_model"]["stack"]["ua"]
    assert f"{point['point']:.3f} [{point['lo']:.3f}, {point['hi']:.3f}]" in card  # the number, from the metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_repo, exported):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "koemo", "serve", "--model", str(exported["model"]), "--port",
                                str(port), "--max-upload-mb", "1", "--max-seconds", "20"], cwd=exported["place"],
                               env=_outside_env(demo_repo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/info", timeout=2)
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=20)


def _post(url: str, files: dict[str, tuple[str, bytes]] | None = None, fields: dict[str, str] | None = None):
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in (fields or {}).items():
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode())
    for name, (filename, data) in (files or {}).items():
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(f"{url}/api/predict", data=body.getvalue(), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        t = np.arange(int(seconds * rate)) / rate
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes())
    return out.getvalue()


def test_api_answers_bad_uploads_with_a_clear_4xx(server, exported):
    cases = {
        "not audio": _post(server, {"wav": ("notes.wav", "이건 음성이 아니에요".encode() * 50)}),
        "too long": _post(server, {"wav": ("long.wav", _wav_bytes(25, rate=8000))}),       # 400 KB, 25 s > 20 s
        "too large": _post(server, {"wav": ("big.wav", _wav_bytes(40, rate=16000))}),     # 1.28 MB > 1 MiB
        "nothing": _post(server, fields={"text": "   "}),
    }
    assert cases["not audio"][0] == 415 and "not audio" in cases["not audio"][1]["detail"]
    assert cases["too long"][0] == 422 and "25.0 s long; the limit is 20 s" in cases["too long"][1]["detail"]
    assert cases["too large"][0] == 413 and "limit is 1,048,576 bytes" in cases["too large"][1]["detail"]
    assert cases["nothing"][0] == 422 and "nothing to predict" in cases["nothing"][1]["detail"]
    good = _post(server, {"wav": ("clip.wav", exported["clip"].read_bytes())}, {"text": exported["text"]})
    assert good[0] == 200 and good[1]["models"]["stack"] == exported["expected"]["models"]["stack"]
    if NOTES:
        lines = [f"{name}: HTTP {status} {json.dumps(body, ensure_ascii=False)}" for name, (status, body) in cases.items()]
        (NOTES / "issue27_bad_uploads.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.skipif(BROWSER is None, reason="no headless Chromium: apt-get install chromium (make browser)")
def test_page_in_headless_chromium_charts_what_predict_answers(server, exported, tmp_path):
    from cdp import Browser

    browser = Browser(BROWSER, str(tmp_path / "profile"))
    try:
        browser.goto(server + "/")
        assert browser.evaluate("[...document.scripts].every(s => !s.src) && "
                                "[...document.querySelectorAll('link')].length === 0")  # nothing loaded from elsewhere
        browser.set_file("#wav", str(exported["clip"]))                # a real upload through the page's form
        browser.evaluate("document.getElementById('go').click()")
        browser.wait_for("document.body.dataset.state === 'done'", timeout=120)
        bars = browser.evaluate("[...document.querySelectorAll('.bar')].map(b => [b.dataset.model, b.dataset.class, "
                                "Number(b.dataset.value), b.style.width])")
        transcript = browser.evaluate("document.getElementById('transcript').textContent")
        shot = browser.screenshot()
    finally:
        browser.close()
    expected = exported["speech_only"]  # no text typed: the export's ASR supplied it, as `koemo predict --wav` does
    charted: dict = {}
    for model, cls, value, width in bars:
        charted.setdefault(model, {})[cls] = value
        assert width.endswith("%") and float(width[:-1]) == pytest.approx(100 * value, abs=0.006)  # as long as its number
    assert set(charted) == {m for m, r in expected["models"].items() if r is not None}
    for model, probs in charted.items():
        np.testing.assert_allclose([probs[c] for c in expected["classes"]],
                                   [expected["models"][model]["probabilities"][c] for c in expected["classes"]],
                                   atol=1e-6, err_msg=model)
    assert expected["transcript"] and expected["transcript"] in transcript and "not typed" in transcript
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    if NOTES:
        (NOTES / "issue27_page.png").write_bytes(shot)
