"""Apply each mutation issue 20 listed (alone), run tests/test_mutation_guards.py, report the tests that fail, revert.

    python tests/mutation_check.py   (from the repo root, PYTHONPATH=src; ~3 min on 2 cores)
"""
import subprocess, sys, pathlib, re
ROOT = pathlib.Path(__file__).resolve().parents[1]
M = [
 ("tfidf: fold vocab+idf on all rows", "src/koemo/models/tfidf.py",
  [("    features = TfidfFeatures.fit(texts, params)\n    clf = _logistic(params, C).fit(features.transform(texts), y)",
    "    features = TfidfFeatures.fit(_ALL[0], params)\n    clf = _logistic(params, C).fit(features.transform(texts), y)"),
   ("    texts = labels[\"text\"].astype(str).to_numpy(dtype=object)\n", "    texts = labels[\"text\"].astype(str).to_numpy(dtype=object)\n    _ALL[:] = [texts]\n"),
   ("SELECT_BY = (", "_ALL = []\nSELECT_BY = (")]),
 ("tfidf: inner-CV vectoriser also on its validation rows", "src/koemo/models/tfidf.py",
  [("    features = TfidfFeatures.fit(train_texts, params)", "    features = TfidfFeatures.fit(np.concatenate([train_texts, valid_texts]), params)")]),
 ("cv: same seed every fold", "src/koemo/train/cv.py",
  [("seed_everything(trainer.config.seed + plan.fold, trainer.device)", "seed_everything(trainer.config.seed, trainer.device)")]),
 ("cv: held-out rows get test predictions when test >= holdout", "src/koemo/train/cv.py",
  [("held[np.isin(plan.holdout, job.absent, invert=True)] = trainer.predict(job.model, job.holdout)",
    "keep = np.isin(plan.holdout, job.absent, invert=True)\n        held[keep] = trainer.predict(job.model, job.test if len(job.test) >= len(job.holdout) else job.holdout)[:int(keep.sum())]")]),
 ("stack: tie goes to the stack (> → >=)", "src/koemo/train/stack.py",
  [('chosen = STACK if nested[STACK] > nested["best_member"]', 'chosen = STACK if nested[STACK] >= nested["best_member"]')]),
 ("decode: RMS = 20·log10(power)", "src/koemo/clips/decode.py",
  [("return 10.0 * np.log10(power)", "return 20.0 * np.log10(power)")]),
 ("embed: unknown-token gate > → >=", "src/koemo/text/embed.py",
  [("    if share > max_share:", "    if share >= max_share:")]),
 ("data: float16 rows passed on unconverted", "src/koemo/train/data.py",
  [("return np.asarray(row, dtype=np.float32), int(self.labels[i])", "return np.asarray(row), int(self.labels[i])")]),
 ("runner: warn_near_collapse(…, 0.0)", "src/koemo/train/runner.py",
  [('warn_near_collapse(model, metrics, float(shared.get("warn_min_recall", 0.2)))', "warn_near_collapse(model, metrics, 0.0)")]),
]
tests = sys.argv[1:] or ["tests/test_mutation_guards.py"]
for name, path, edits in M:
    f = ROOT / path
    original = f.read_text()
    text = original
    for old, new in edits:
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    f.write_text(text)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x" if False else "-q", *tests],
                              cwd=ROOT, capture_output=True, text=True)
        failed = sorted(set(re.findall(r"^FAILED (\S+)", done.stdout, re.M)))
        print(f"{name}: rc={done.returncode}; killed by: {', '.join(t.split('::')[1] for t in failed) or 'NOTHING'}", flush=True)
    finally:
        f.write_text(original)

