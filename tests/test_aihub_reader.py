import pytest

from aihub_files import hex_id, make_row, write_release, write_wav
from koemo.corpus.aihub import BadCSV, NotAnAIHubCSV, read_aihub_dir, read_csv_rows, release_name
from koemo.corpus.manifest import summarize
from koemo.corpus.emotions import normalize_emotion

ANGRY5 = [("Angry", 2)] * 5


@pytest.mark.parametrize("raw, expected", [
    ("Happiness", "happiness"), (" angry ", "angry"), ("anger", "angry"), ("sad", "sadness"),
    ("happines", "happiness"), ("Sadness.", "sadness"), ("'Neutral'", "neutral"), ("joy", None), ("", None), (None, None),
])
def test_normalize_emotion(raw, expected):
    assert normalize_emotion(raw) == expected


@pytest.mark.parametrize("name, release", [
    ("4차_14606.csv", "4차년도"), ("5차_10011.csv", "5차년도"), ("5차년도_2차_19374.csv", "5차년도_2차"), ("5차년도.csv", "5차년도"),
])
def test_release_name(tmp_path, name, release):
    assert release_name(tmp_path / name) == release


def test_reads_releases_in_both_encodings_and_header_spellings(tmp_path):
    write_release(tmp_path / "4차년도.csv", [make_row(hex_id(1), "정말 화가 나요", ANGRY5, situation="anger")], "cp949")
    write_release(tmp_path / "5차년도_2차_19374.csv",
                  [make_row(hex_id(2), "너무 슬퍼요", [("Sadness", 1)] * 4 + [("sad", 2)], situation="sadness")],
                  "utf-8-sig", squeeze_4th=True)
    write_release(tmp_path / "sub" / "5차년도.csv", [make_row(hex_id(3), "그냥 그래요", [("Neutral", 0)] * 5, "neutral")], "utf-8")
    write_wav(tmp_path / "4차년도" / f"{hex_id(1)}.wav")
    write_wav(tmp_path / "5차년도_2차" / "deep" / f"{hex_id(2)}.wav", sample_rate=16_000)
    write_wav(tmp_path / "5차년도" / "5차_wav" / f"{hex_id(3)}.wav")

    result = read_aihub_dir(tmp_path)
    m = result.manifest
    assert list(m["wav_id"]) == [hex_id(1), hex_id(2), hex_id(3)]
    assert list(m["release"]) == ["4차년도", "5차년도_2차", "5차년도"]
    assert list(m["situation"]) == ["angry", "sadness", "neutral"]
    assert m.loc[1, "emotion_5"] == "sadness" and m.loc[1, "intensity_5"] == 2
    assert m.loc[1, "sample_rate"] == 16_000 and m.loc[0, "sample_rate"] == 48_000
    assert m.loc[0, "text"] == "정말 화가 나요" and m.loc[0, "age"] == 30 and m.loc[0, "gender"] == "남성"
    assert {f["encoding"] for f in result.files} == {"cp949", "utf-8-sig", "utf-8"}
    assert result.dropped.empty


def test_bad_rows_are_dropped_with_reasons_and_counted(tmp_path):
    rows = [
        make_row(hex_id(1), "좋아요", [("Happiness", 2)] * 5),
        make_row(hex_id(2), "wav 없음", ANGRY5),                                     # no wav on disk
        make_row(hex_id(3), "세기 오류", [("Angry", "x")] + ANGRY5[1:]),              # corrupt intensity
        make_row(hex_id(4), "세기 범위", [("Angry", 7)] + ANGRY5[1:]),                # out of range
        make_row(hex_id(5), "모르는 감정", [("Joy", 1)] + ANGRY5[1:]),                 # unknown emotion
        make_row(hex_id(6), "", ANGRY5),                                             # empty text
        make_row(hex_id(1), "중복", ANGRY5),                                          # duplicate wav_id
    ]
    write_release(tmp_path / "5차년도.csv", rows)
    for i in (1, 3, 4, 5, 6):
        write_wav(tmp_path / "wav" / f"{hex_id(i)}.wav")
    (tmp_path / "wav" / f"{hex_id(7)}.wav").write_bytes(b"RIFF nonsense")
    write_release(tmp_path / "4차년도.csv", [make_row(hex_id(7), "깨진 파일", ANGRY5)])

    result = read_aihub_dir(tmp_path)
    summary = summarize(result, "aihub")
    assert summary["rows_read"] == 8 and summary["rows_kept"] == 1
    assert summary["rows_kept"] + summary["rows_dropped"] == summary["rows_read"]
    by_reason = summary["dropped_by_reason"]
    assert by_reason["missing_wav"] == 1 and by_reason["bad_intensity"] == 2 and by_reason["unknown_emotion"] == 1
    assert by_reason["empty_text"] == 1 and by_reason["duplicate_wav_id"] == 1 and by_reason["unreadable_wav"] == 1
    dropped = result.dropped.set_index("wav_id")
    assert dropped.loc[hex_id(3), "source_row"] == 4 and "1번 감정세기='x'" in dropped.loc[hex_id(3), "detail"]
    assert dropped.loc[hex_id(3), "source_file"].endswith("5차년도.csv")


def test_not_an_aihub_csv_is_a_clear_error(tmp_path):
    write_release(tmp_path / "5차년도.csv", [make_row(hex_id(1), "좋아요", [("Happiness", 2)] * 5)])
    (tmp_path / "notes.csv").write_text("name,score\na,1\n", encoding="utf-8")
    with pytest.raises(NotAnAIHubCSV, match=r"notes\.csv is not an AI Hub emotion CSV.*Move it out of data.dir"):
        read_aihub_dir(tmp_path)


def test_missing_directory_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does-not-exist does not exist.*data.dir"):
        read_aihub_dir(tmp_path / "does-not-exist")
    with pytest.raises(FileNotFoundError, match="No release CSV"):
        read_aihub_dir(tmp_path)


def test_intensity_3_and_cut_short_rows_are_dropped_with_their_own_reasons(tmp_path):
    rows = [make_row(hex_id(1), "좋아요", [("Happiness", 2)] * 5),
            make_row(hex_id(2), "세기 3", [("Angry", 3)] + ANGRY5[1:]),   # the scale is 0–2
            make_row(hex_id(3), "잘린 줄", ANGRY5)[:12],                    # ends before 5번 감정세기
            make_row(hex_id(4), "나이 없음", ANGRY5, age="", gender="")]    # empty cells, all 15 fields
    write_release(tmp_path / "5차년도.csv", rows)
    for i in range(1, 5):
        write_wav(tmp_path / "wav" / f"{hex_id(i)}.wav", seconds=0.1)
    result = read_aihub_dir(tmp_path)
    assert list(result.manifest["wav_id"]) == [hex_id(1), hex_id(4)]
    dropped = result.dropped.set_index("wav_id")
    assert dropped.loc[hex_id(2), "reason"] == "bad_intensity" and "'3' (expected 0, 1 or 2)" in dropped.loc[hex_id(2), "detail"]
    assert dropped.loc[hex_id(3), ["source_row", "reason", "detail"]].tolist() == [4, "too_few_fields",
                                                                                  "12 fields, the header has 15"]
    assert summarize(result, "aihub")["dropped_by_reason"]["too_few_fields"] == 1


@pytest.mark.parametrize("body, message", [
    (b"", r"is empty \(0 bytes\)"),
    (b"\n\n", r"has no header line \(2 bytes, all blank\)"),
    ("a,b\n1,2,3\n4,5\n".encode(), r"line 2 has 3 fields, but the header has 2.*Quote that field"),  # pandas: silently an index
    ("a,b\n1,2\n\"3,4\n5,6\n".encode(), r"line 3: a quote \(\"\) opened on this line is not closed"),
    ("a,b\n1,2\n".encode("utf-16"), r"cannot decode as utf-8 or cp949"),
])
def test_unparseable_csvs_name_the_file_and_line(tmp_path, body, message):
    (tmp_path / "x.csv").write_bytes(body)
    with pytest.raises(BadCSV, match=message) as caught:
        read_csv_rows(tmp_path / "x.csv")
    assert str(caught.value).startswith(str(tmp_path / "x.csv"))


def test_csv_rows_keep_their_file_lines(tmp_path):
    (tmp_path / "x.csv").write_bytes("a,b\r\n1,2\r\n\r\n\"multi\nline\",3\r\n4\r\n".encode("cp949"))
    parsed = read_csv_rows(tmp_path / "x.csv")
    assert parsed.header == ["a", "b"] and parsed.encoding == "utf-8"
    assert parsed.records == [(2, ["1", "2"]), (4, ["multi\nline", "3"]), (6, ["4"])]


def test_texts_without_hangul_are_dropped_as_their_own_reason(tmp_path):
    """Emoji-only or English-only 발화문: no Korean model can read it (group key '', a handful of [UNK]s that pass
    the unknown-token gate), so it is a counted drop, not a training row."""
    rows = [make_row(hex_id(1), "좋아요 😊", [("Happiness", 2)] * 5),       # Hangul plus emoji: kept
            make_row(hex_id(2), "😡😡😡", ANGRY5),
            make_row(hex_id(3), "I am so angry", ANGRY5),
            make_row(hex_id(4), "ㅠㅠ", [("Sadness", 1)] * 5)]              # jamo only: Korean, kept
    write_release(tmp_path / "5차년도.csv", rows, encoding="utf-8")
    for i in range(1, 5):
        write_wav(tmp_path / "wav" / f"{hex_id(i)}.wav", seconds=0.1)
    result = read_aihub_dir(tmp_path)
    assert list(result.manifest["wav_id"]) == [hex_id(1), hex_id(4)]
    dropped = result.dropped.set_index("wav_id")
    assert dropped.loc[[hex_id(2), hex_id(3)], "reason"].tolist() == ["no_hangul", "no_hangul"]
    assert "'I am so angry'" in dropped.loc[hex_id(3), "detail"]
    assert summarize(result, "aihub")["dropped_by_reason"]["no_hangul"] == 2


def test_a_duplicate_wav_id_names_both_files_and_whether_the_rows_agree(tmp_path):
    write_release(tmp_path / "4차년도.csv", [make_row(hex_id(1), "정말 싫어", [("Disgust", 2)] * 5),
                                            make_row(hex_id(2), "같은 줄", ANGRY5)])
    write_release(tmp_path / "5차년도.csv", [make_row(hex_id(1), "너무 슬퍼", [("Sadness", 2)] * 5),
                                            make_row(hex_id(2), "같은 줄", ANGRY5)])
    for i in (1, 2):
        write_wav(tmp_path / "wav" / f"{hex_id(i)}.wav", seconds=0.1)
    result = read_aihub_dir(tmp_path)
    assert len(result.manifest) == 2 and len(result.dropped) == 2
    dropped = result.dropped.set_index("wav_id")
    differ, agree = dropped.loc[hex_id(1)], dropped.loc[hex_id(2)]
    assert differ["reason"] == agree["reason"] == "duplicate_wav_id"
    assert differ["source_file"].endswith("5차년도.csv") and "4차년도.csv line 2 (kept)" in differ["detail"]
    assert "disagree" in differ["detail"] and "'정말 싫어' vs '너무 슬퍼'" in differ["detail"]
    assert "'Disgust' vs 'Sadness'" in differ["detail"]
    assert "4차년도.csv line 3 (kept); the rows agree" in agree["detail"]
