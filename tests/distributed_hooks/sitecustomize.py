"""Test hooks for stages run in several processes, loaded by every Python process whose PYTHONPATH holds this folder
(tests/test_distributed.py, the e2e tests). Each does nothing unless its variable is set:

- KOEMO_TEST_WRITE_LOG=<file>: every atomic write (koemo.core.io.atomic_path / atomic_dir) appends "<RANK> <target>" there,
  so a test can see which process wrote what, and how often;
- KOEMO_TEST_FAIL_RANK=<r> (with KOEMO_TEST_FAIL_EPOCH=<e>, default 2): process r raises in its e-th training epoch,
  after writing the time it raised to KOEMO_TEST_FAIL_STAMP when that is set.
"""

import os

if os.environ.get("KOEMO_TEST_WRITE_LOG"):
    from contextlib import contextmanager

    import koemo.core.io as io

    def _logged(writer):
        @contextmanager
        def wrapper(path, *args, **kwargs):
            with writer(path, *args, **kwargs) as tmp:
                yield tmp
            with open(os.environ["KOEMO_TEST_WRITE_LOG"], "a", encoding="utf-8") as log:
                log.write(f"{os.environ.get('RANK', '-')} {os.path.abspath(path)}\n")
        return wrapper

    io.atomic_path, io.atomic_dir = _logged(io.atomic_path), _logged(io.atomic_dir)

if os.environ.get("RANK") is not None and os.environ.get("RANK") == os.environ.get("KOEMO_TEST_FAIL_RANK"):
    import time

    import koemo.train.trainer as trainer

    _train_epoch, _calls = trainer.Trainer._train_epoch, []

    def _failing(self, *args, **kwargs):
        _calls.append(1)
        if len(_calls) == int(os.environ.get("KOEMO_TEST_FAIL_EPOCH", "2")):
            if os.environ.get("KOEMO_TEST_FAIL_STAMP"):
                with open(os.environ["KOEMO_TEST_FAIL_STAMP"], "w") as stamp:
                    stamp.write(repr(time.time()))
            raise ValueError(f"injected failure in process {os.environ['RANK']}")
        return _train_epoch(self, *args, **kwargs)

    trainer.Trainer._train_epoch = _failing
