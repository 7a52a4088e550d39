"""Progress that counts finished work, rated over a moving window, plain lines when stderr is not a terminal."""

import io

from koemo.core.progress import LOG_EVERY, MovingRate, Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_rate_follows_the_last_minute_not_the_start():
    clock = Clock()
    rate = MovingRate(window=60, clock=clock)
    for second in range(1, 61):       # a fast start: 100 units/s for a minute
        clock.now = second
        rate.add(100 * second)
    for second in range(61, 241):     # then 10 units/s for three minutes
        clock.now = second
        rate.add(6000 + 10 * (second - 60))
    assert abs(rate.rate() - 10) < 0.5  # a from-the-start average would say 32.5


def test_without_a_terminal_it_prints_plain_lines_with_an_eta():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(1000, "ssl_features (x)", stream=stream, tty=False, clock=clock, extra_unit="× real time")
    for step in range(1, 101):
        clock.now = step
        bar.update(5, extra=20.0)    # 5 clips/s, 4 s of audio each
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 100 // int(LOG_EVERY) + 1
    assert lines[-1] == ("ssl_features (x): 500/1,000 clips (50%), 5.0 clips/s, 20× real time, elapsed 1:40, "
                         "ETA 1:40")


def test_disabled_progress_writes_nothing():
    stream = io.StringIO()
    with Progress(10, "x", disable=True, stream=stream, tty=False) as bar:
        bar.update(10)
    assert stream.getvalue() == ""


def test_a_pass_counts_clips_when_their_batch_is_done_not_when_decoded(monkeypatch):
    """Decoding runs ahead of the batch that computes features: a bar counting decodes said 3.5 min for 32."""
    import numpy as np

    import koemo.core.progress
    from koemo.clips.decode import Decoded
    from koemo.clips.extraction import Batcher, run_pass

    bars = []

    class Recording(Progress):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "tty": False, "stream": io.StringIO()})
            bars.append(self)

    monkeypatch.setattr(koemo.core.progress, "Progress", Recording)
    seen = []

    def process(waves, metas):
        seen.append(bars[0].done)             # what the bar said when this batch started
        batcher.progress.update(1)            # the processor may report part of its batch
        seen.append(bars[0].done)

    batcher = Batcher(process, max_items=4)
    records = [{"wav_id": str(i), "wav_path": f"{i}.wav"} for i in range(10)]
    load = (lambda path: Decoded(None, "missing") if path == "5.wav" else
            Decoded(np.zeros(1600, np.float32), file_seconds=2.0))
    run_pass(records, [r["wav_path"] for r in records], load, batcher, lambda r: {"wav_id": r["wav_id"]}, None,
             window=8, desc="x", sample_rate=16000)
    # batches: clips 0-3 (flushed when clip 4 arrives: 0 done, not 5 decoded), then 4 6 7 8 (clip 5 failed:
    # counted at once), then 9
    assert seen == [0, 1, 5, 6, 9, 10]
    assert bars[0].done == 10 and bars[0].extra == 18.0   # 9 clips of 2 s each
