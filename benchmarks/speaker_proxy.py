"""What `split.group_by` does on a release-shaped corpus: groups, the largest group's share of rows, the test set's
real share and whether it still holds every class, for sentence / speaker (나이+성별 proxy) / sentence+speaker.

The corpus is synthetic but shaped like the three AI Hub releases together (assumptions, since the real speaker
list is not published): 44,000 rows; `--speakers` people (default 300, also try 100 / 1,000) aged 20-69 with most in
their 20s-30s, half women; each speaker's rows split between sentences of their own and a shared pool of short
replies (`네`, `아니요 그건 아니에요`, …) that many speakers say; classes skewed as weighted labels come out on the
real data (sadness > angry ≈ neutral > happiness). Only the labels and keys matter: no audio, no training.

    python benchmarks/speaker_proxy.py [--rows 44000] [--speakers 100 300 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from koemo.labels.split import SplitError, assign_split, describe_groups, make_groups  # noqa: E402

CLASSES = ["angry", "happiness", "neutral", "sadness"]
SHARES = [0.26, 0.16, 0.24, 0.34]


def corpus(rows: int, speakers: int, seed: int, shared_share: float = 0.15, shared_pool: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ages = np.clip(np.round(rng.gamma(6.0, 1.0, speakers) * 4.5 + 8), 20, 69).astype(int)   # mode in the 20s-30s
    genders = np.where(rng.random(speakers) < 0.5, "여성", "남성")
    speaker = rng.integers(0, speakers, rows)
    shared = rng.random(rows) < shared_share
    own = rng.integers(0, max(2, rows // speakers), rows)   # a speaker's own sentences, some said twice
    text = np.where(shared, [f"공용 {k}" for k in rng.integers(0, shared_pool, rows)],
                    [f"문장 {s}-{k}" for s, k in zip(speaker, own)])
    label = rng.choice(CLASSES, rows, p=SHARES)
    return pd.DataFrame({"text": text, "age": ages[speaker], "gender": genders[speaker], "label": label})


def measure(frame: pd.DataFrame, group_by: str, test_size: float = 0.2, folds: int = 4, seed: int = 13) -> dict:
    started = time.perf_counter()
    try:
        groups = make_groups(frame, group_by)
        split, _ = assign_split(frame["label"], groups, test_size, folds, seed)
    except SplitError as err:
        return {"group_by": group_by, "refused": str(err).split(" (")[0]}
    out = describe_groups(groups, frame["label"], split, CLASSES)
    test = frame["label"][split == "test"]
    proxy = frame["age"].astype(str) + frame["gender"]
    seen = set(proxy[split == "train"])
    return {"group_by": group_by, **out, "test_share": float((split == "test").mean()),
            "test_rows_proxy_in_train": float(proxy[split == "test"].isin(seen).mean()),
            "test_rows_sentence_in_train": float(frame["text"][split == "test"].isin(set(frame["text"][split == "train"])).mean()),
            "test_class_shares": {c: round(float((test == c).mean()), 3) for c in CLASSES},
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=44_000)
    parser.add_argument("--speakers", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| speakers | group_by | groups | largest group | test share | test rows whose 나이+성별 is in train "
          "| … whose sentence is in train | test has every class | test class shares |")
    print("|---|---|---|---|---|---|---|---|---|")
    for speakers in args.speakers:
        frame = corpus(args.rows, speakers, args.seed)
        proxies = frame.groupby(["age", "gender"]).ngroups
        for group_by in ("sentence", "speaker", "sentence+speaker"):
            r = measure(frame, group_by)
            if "refused" in r:
                print(f"| {speakers} ({proxies} 나이+성별) | {group_by} | refused: {r['refused']} | | | | | | |")
                continue
            print(f"| {speakers} ({proxies} 나이+성별) | {group_by} | {r['groups']:,} | {r['largest_group_share']:.1%} | "
                  f"{r['test_share']:.1%} | {r['test_rows_proxy_in_train']:.0%} | {r['test_rows_sentence_in_train']:.0%} | {'yes' if r['test_has_every_class'] else 'NO ' + str(r['test_classes_missing'])} | "
                  f"{r['test_class_shares']} |")


if __name__ == "__main__":
    main()
