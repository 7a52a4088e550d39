"""The HTTP API and its page: `POST /api/predict` (multipart `wav` and/or `text`) → every model's and the stack's
probabilities, as `koemo predict --json` prints them; `GET /` → the page (no CDN: one self-contained HTML file).

Bad input is a 4xx with a JSON `detail` saying what to do, never a traceback: 413 for an upload larger than
`max_upload_bytes` (refused from Content-Length before it is read; 411 without that header), 415
for a file that is not audio soundfile can decode, 422 for audio longer than `max_seconds` or for no input at
all. The models are loaded once; requests are answered one at a time (a `Predictor` is not thread-safe).
"""


import os
import tempfile
import threading
from pathlib import Path

from koemo.serve.page import PAGE

CHUNK = 1 << 16


def create_app(model_dir: str | Path, device: str = "auto", max_upload_bytes: int = 10 * 2**20, max_seconds: float = 30.0,
               predictor=None):
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    from koemo.predict.predictor import PredictError, Predictor, Utterance, answer

    predictor = predictor if predictor is not None else Predictor(model_dir, device=device)
    lock = threading.Lock()
    app = FastAPI(title="koemo", docs_url=None, redoc_url=None, openapi_url=None)  # the docs pages load a CDN

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/api/info")
    def info() -> dict:
        return {"classes": predictor.classes, "models": [*predictor.models, "stack"],
                "max_upload_bytes": max_upload_bytes, "max_seconds": max_seconds}

    @app.post("/api/predict")
    async def predict(request: Request):
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():  # chunked: its size is unknown until it has all been read
            raise HTTPException(411, "send the upload with a Content-Length header (browsers and curl do)")
        if int(declared) > max_upload_bytes + CHUNK:  # the form's own fields take a few hundred bytes
            raise HTTPException(413, f"the upload is {int(declared):,} bytes; the limit is {max_upload_bytes:,} bytes "
                                     f"(`koemo serve --max-upload-mb`): send a shorter clip")
        form = await request.form(max_part_size=max_upload_bytes + 1)
        text = str(form.get("text") or "").strip() or None
        upload = form.get("wav")
        wav_path = None
        try:
            if upload is not None and hasattr(upload, "read"):
                wav_path = await _save_upload(upload, max_upload_bytes)
            if wav_path is None and text is None:
                raise HTTPException(422, "nothing to predict from: send a `wav` file and/or a `text` field")
            if wav_path is not None:
                _check_audio(wav_path, max_seconds, getattr(upload, "filename", "the upload"))
            with lock:
                probs = predictor.predict([Utterance(wav_path, text)])
                notes = predictor.notes[0]
                transcript = predictor.transcripts[0] if predictor.transcripts else None
            return JSONResponse({"text": text, **answer(probs, predictor.classes, notes, 0, transcript)})
        except PredictError as err:
            raise HTTPException(422, str(err).replace(str(wav_path), "the upload") if wav_path else str(err)) from None
        finally:
            if wav_path is not None:
                os.unlink(wav_path)

    return app


async def _save_upload(upload, limit: int) -> str | None:
    """The uploaded file in a temp file (None when empty); 413 as soon as it passes `limit` bytes."""
    from fastapi import HTTPException

    handle = tempfile.NamedTemporaryFile(prefix="koemo-upload-", suffix=".wav", delete=False)
    size = 0
    try:
        with handle:
            while True:
                block = await upload.read(CHUNK)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise HTTPException(413, f"the upload is larger than the limit of {limit:,} bytes "
                                             "(`koemo serve --max-upload-mb`): send a shorter clip")
                handle.write(block)
    except BaseException:
        os.unlink(handle.name)
        raise
    if size == 0:
        os.unlink(handle.name)
        return None
    return handle.name


def _check_audio(path: str, max_seconds: float, name: str) -> None:
    from fastapi import HTTPException
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception:  # noqa: BLE001 - libsndfile's errors all mean "not audio it can read"
        raise HTTPException(415, f"{name} is not audio koemo can read (send a wav, PCM or float)") from None
    if info.frames == 0 or info.samplerate <= 0:
        raise HTTPException(415, f"{name} holds no audio samples")
    if info.duration > max_seconds:
        raise HTTPException(422, f"{name} is {info.duration:.1f} s long; the limit is {max_seconds:g} s "
                                 "(`koemo serve --max-seconds`): send a shorter clip")


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          max_upload_bytes: int = 10 * 2**20, max_seconds: float = 30.0) -> None:
    import uvicorn
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    app = create_app(model_dir, device, max_upload_bytes, max_seconds)
    print(f"koemo serve: {model_dir} on http://{host}:{port}/ (API: POST /api/predict)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
