"""Korean speech from espeak-ng (the library shipped in `espeakng-loader`), driven through ctypes.

libespeak-ng keeps function-level static state (pitch-flutter index, wave phase) that survives
`espeak_Terminate`, so the same call gives slightly different samples depending on what was spoken
before. To make every utterance depend only on its own text and prosody, each call loads a fresh
library instance and unloads it afterwards (dlopen + espeak_Initialize + dlclose: ~4 ms).
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from koemo.demo.prosody import Prosody

ESPEAK_RATE = 22050                      # espeak-ng's native output rate
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    pass


def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover - it is a pinned dependency
        raise EspeakError("espeakng-loader is not installed: run `make test` or `pip install -e .` to install the pinned dependencies") from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def _is_mapped(library: str) -> bool:
    """Whether libespeak-ng is loaded in this process (Linux: /proc/self/maps; elsewhere assume not)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as handle:
            maps = handle.read()
    except OSError:
        return False
    return os.path.realpath(library) in maps


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int


@contextmanager
def _fresh_library(chunks: list[np.ndarray]) -> Iterator[ctypes.CDLL]:
    """A newly loaded, initialised libespeak-ng whose audio is appended to `chunks`; unloaded on exit."""
    library, data = _paths()
    if _is_mapped(library):
        raise EspeakError(
            f"{library} is already loaded in this process (by other code, or it could not be unloaded), so its "
            "internal state cannot be reset and the demo audio would not be reproducible. Synthesise in fresh "
            "processes instead: build_demo_corpus(..., workers=2)."
        )
    lib = ctypes.CDLL(library, mode=ctypes.RTLD_LOCAL)
    handle = lib._handle
    try:
        _declare(lib)

        @_CALLBACK
        def collect(wav, n, _events):
            if n > 0 and wav:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if rate != ESPEAK_RATE:
            raise EspeakError(f"espeak_Initialize returned {rate} (expected {ESPEAK_RATE} Hz); is {data} intact?")
        lib.espeak_SetSynthCallback(collect)
        try:
            yield lib
        finally:
            lib.espeak_Terminate()
    finally:
        del lib
        _ctypes.dlclose(handle)  # drops the static state with the library


def speak(text: str, prosody: Prosody) -> np.ndarray:
    """int16 mono samples at ESPEAK_RATE for `text` spoken by the `ko` voice with `prosody`."""
    chunks: list[np.ndarray] = []
    with _fresh_library(chunks) as lib:
        if lib.espeak_SetVoiceByName(prosody.voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {prosody.voice!r}; variants live in espeak-ng-data/voices/!v")
        for parameter, value in ((_RATE, prosody.rate), (_VOLUME, prosody.volume), (_PITCH, prosody.pitch),
                                 (_RANGE, prosody.range), (_WORDGAP, prosody.wordgap)):
            lib.espeak_SetParameter(parameter, int(value), 0)
        encoded = text.encode("utf-8")
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise EspeakError(f"espeak_Synth failed with status {status} for {text!r}")
        lib.espeak_Synchronize()
    if not chunks:
        raise EspeakError(f"espeak-ng produced no audio for {text!r}")
    return np.concatenate(chunks)
