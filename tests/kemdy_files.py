"""Small directories laid out like ETRI's KEMDy20 (annotation/SessNN_eval.csv with its two header rows, wav/SessionNN/
<Segment ID>.wav + .txt, a biosignal folder), built from the corpus' public description for reader and pipeline tests."""

from __future__ import annotations

from pathlib import Path

from aihub_files import write_wav

EVALUATORS = [f"Eval{k:02d}{'F' if k % 2 else 'M'}" for k in range(1, 11)]
SENTENCES = {
    "angry": ["정말 화가 나서 참을 수가 없어", "왜 약속을 또 어긴 거야", "이건 너무 불공평하잖아"],
    "happy": ["오늘 정말 기분이 좋아요", "합격 소식을 들어서 너무 기뻐", "같이 여행 가게 돼서 신나"],
    "neutral": ["내일 회의는 세 시에 있어요", "버스는 십 분 뒤에 도착해", "점심은 학교 식당에서 먹었어"],
    "sad": ["그 소식을 듣고 너무 슬펐어", "친구가 멀리 이사를 가서 허전해", "시험에 떨어져서 속상해"],
}


def header_rows() -> list[list[str]]:
    first = ["Numb", "Wav", "", "Segment ID", "Total Evaluation", "", ""]
    second = ["", "start", "end", "", "Emotion", "Valence", "Arousal"]
    for name in EVALUATORS:
        first += [name, "", ""]
        second += ["Emotion", "Valence", "Arousal"]
    return [first, second]


def segment_id(session: int, script: int, user: int, gender: str, n: int) -> str:
    return f"Sess{session:02d}_script{script:02d}_User{user:03d}{gender}_{n:03d}"


def write_session(root: Path, session: int, rows: list[tuple[str, str, str | None]], encoding: str = "utf-8") -> None:
    """rows: (Segment ID, Total Evaluation emotion, transcript or None for no .txt); a wav is written for each."""
    lines = header_rows()
    for k, (seg, total, text) in enumerate(rows, start=1):
        evals = []
        for e in range(len(EVALUATORS)):
            evals += [total.split(";")[0] if e % 3 else "neutral", "3", "3"]
        lines.append([str(k), "0.0", "1.0", seg, total, "3", "3"] + evals)
        folder = root / "wav" / f"Session{session:02d}"
        write_wav(folder / f"{seg}.wav", seconds=0.3, sample_rate=16_000, seed=k)
        if text is not None:
            (folder / f"{seg}.txt").write_bytes(text.encode("cp949"))
    path = root / "annotation" / f"Sess{session:02d}_eval.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join(",".join(line) for line in lines) + "\n").encode(encoding))
    (root / "EDA" / f"Session{session:02d}").mkdir(parents=True, exist_ok=True)  # biosignals: ignored
    (root / "EDA" / f"Session{session:02d}" / f"Sess{session:02d}_eda.csv").write_text("a,b\n1,2\n")


def make_corpus(root: Path, sessions: int = 8, per_session: int = 12) -> dict[str, int]:
    """A clean corpus (every emotion in every session, two speakers each) plus one row of every drop reason in
    session 1. Returns the expected drop counts."""
    emotions = list(SENTENCES)
    for s in range(1, sessions + 1):
        rows = []
        for n in range(per_session):
            emotion = emotions[n % len(emotions)]
            gender = "F" if n % 2 else "M"
            user = 2 * s - 1 + n % 2
            worded = emotion if (n + s) % 4 else emotions[(n + s + 1) % len(emotions)]  # a quarter worded otherwise
            rows.append((segment_id(s, 1 + n // 6, user, gender, n + 1), emotion,
                         f"c/ {SENTENCES[worded][(n + s) % 3]} *"))
        if s == 1:
            rows += [(segment_id(1, 9, 1, "M", 90), "happy;neutral", "음 그래서 그랬구나"),
                     (segment_id(1, 9, 1, "M", 91), "boredom", "지루해 죽겠어"),
                     (segment_id(1, 9, 1, "M", 92), "sad", None),
                     (segment_id(1, 9, 1, "M", 93), "angry", "n/ ok ok")]
        write_session(root, s, rows)
    # a row pointing at a wav that is not there
    path = root / "annotation" / "Sess01_eval.csv"
    path.write_text(path.read_text() + "99,0,1," + segment_id(1, 9, 1, "M", 94) + ",sad,3,3\n")
    return {"tied_total_evaluation": 1, "unknown_emotion": 1, "missing_transcript": 1, "no_hangul": 1, "missing_wav": 1}
