"""Korean sentences written for this project, built compositionally so a text model cannot memorise them.

Each emotion has its own causes (what happened) and reactions (how the speaker feels about it);
a sentence is [opener] [time] [cause] [reaction], giving tens of thousands of combinations per
emotion. `neutral` sentences are plain information (plans, habits). A separate pool of
emotion-neutral *wording* (`AMBIGUOUS`) describes events that could be good or bad news: the demo
speaks a share of every emotion with those, so emotion is only partly recoverable from text.
"""

from __future__ import annotations

import numpy as np

AMBIGUOUS = "ambiguous"

TIMES = ("", "오늘", "어제", "아까", "방금", "지난주에", "이번 주말에", "어젯밤에", "오늘 아침에", "점심때",
         "퇴근길에", "며칠 전에", "지난달에")
PEOPLE = ("친구", "동생", "룸메이트", "후배", "동기", "남자친구", "여자친구", "사촌 동생", "옆자리 동료", "그 사람",
          "단짝 친구", "조카", "같은 반 친구", "대학 선배")

# Per emotion: openers (interjections), causes that follow "<person>이/가 ", causes that stand alone,
# and reactions that close the sentence.
BANK: dict[str, dict[str, tuple[str, ...]]] = {
    "angry": {
        "openers": ("", "", "아니,", "하,", "진짜"),
        "person_causes": (
            "약속 시간에 한 시간이나 늦어서", "내 물건을 허락도 없이 가져가서", "내 말을 끝까지 무시해서",
            "또 거짓말을 해서", "뒤에서 내 험담을 하고 다녀서", "빌려 간 돈을 아직도 안 갚아서",
            "새벽까지 시끄럽게 떠들어서", "내 차를 긁어 놓고 그냥 가 버려서", "약속을 또 일방적으로 취소해서",
            "내가 한 일을 자기가 했다고 우겨서", "사과 한마디 없이 모른 척해서", "사람들 앞에서 나한테 소리를 질러서",
        ),
        "solo_causes": (
            "새치기를 당했는데 오히려 나보고 뭐라고 해서", "택배가 또 엉뚱한 데로 가서",
            "고객센터에 세 번이나 전화했는데 아무도 안 받아서", "누가 내 자리에 쓰레기를 버리고 가서",
            "누가 주차장 입구를 차로 막아 놔서", "계산이 틀렸는데 직원이 끝까지 우겨서",
        ),
        "reactions": (
            "진짜 화가 나요.", "너무 짜증 나.", "정말 참을 수가 없어요.", "어이가 없어서 말이 안 나와.",
            "열받아 죽겠어.", "이번엔 절대 그냥 안 넘어가.", "생각할수록 화가 치밀어요.", "도대체 왜 그러는 거야?",
            "진짜 너무한 거 아니야?", "이번엔 꼭 따질 거야!",
        ),
    },
    "happiness": {
        "openers": ("", "", "와,", "야,", "있잖아,"),
        "person_causes": (
            "생일 선물로 내가 갖고 싶던 걸 사 줘서", "깜짝 파티를 열어 줘서", "맛있는 저녁을 해 줘서",
            "드디어 취업에 성공해서", "오랜만에 먼저 연락을 해 줘서", "내 얘기를 끝까지 들어 줘서",
            "꽃다발을 들고 찾아와서", "같이 여행 가자고 먼저 말해 줘서", "시험에 붙었다고 전화해서",
            "결혼한다고 소식을 전해 줘서", "내가 만든 케이크를 맛있게 먹어 줘서", "나를 제일 친한 친구라고 해 줘서",
        ),
        "solo_causes": (
            "기다리던 합격 문자가 와서", "월급이 생각보다 많이 올라서", "보고 싶던 공연 표를 구해서",
            "발표가 생각보다 훨씬 잘 끝나서", "오랜만에 가족이 다 같이 모여서", "우리 팀이 결승에서 이겨서",
        ),
        "reactions": (
            "너무 기뻐요.", "진짜 행복해.", "하루 종일 웃음이 나요.", "기분이 날아갈 것 같아.", "정말 신나요!",
            "너무 고마워서 눈물이 날 뻔했어.", "오늘은 최고의 하루야.", "이렇게 좋은 날이 또 있을까?",
            "가슴이 벅차요.", "세상을 다 가진 기분이야!",
        ),
    },
    "sadness": {
        "openers": ("", "", "하아,", "그냥,"),
        "person_causes": (
            "멀리 이사를 가 버려서", "오랫동안 아프다고 해서", "나한테 헤어지자고 해서", "회사를 그만두고 고향으로 내려가서",
            "내 생일을 잊어버려서", "더 이상 연락하지 말자고 해서", "혼자 유학을 떠나서",
            "크게 다쳐서 병원에 입원해 있어서", "결국 시험에 떨어져서", "나 때문에 많이 힘들었다고 해서",
            "요즘 나를 피하는 것 같아서", "키우던 고양이를 떠나보냈다고 해서",
        ),
        "solo_causes": (
            "할머니 댁이 팔렸다는 얘기를 들어서", "십 년 키운 강아지가 무지개다리를 건너서", "면접에서 또 떨어져서",
            "혼자 밥을 먹다가 옛날 생각이 나서", "이사 가면서 정든 동네를 떠나서", "아무도 내 생일을 몰라서",
        ),
        "reactions": (
            "너무 슬퍼요.", "마음이 너무 아파.", "눈물이 멈추질 않아요.", "하루 종일 아무것도 못 했어.", "가슴이 먹먹해요.",
            "너무 허전하고 쓸쓸해.", "요즘 계속 우울해요.", "아무 의욕이 없어.", "혼자 한참을 울었어요.",
            "보고 싶어서 견딜 수가 없어.",
        ),
    },
    "disgust": {
        "openers": ("", "", "으,", "윽,"),
        "person_causes": (
            "코를 파던 손으로 악수를 청해서", "씻지도 않은 컵에 물을 따라 줘서", "음식을 입에 넣은 채로 떠들어서",
            "길바닥에 침을 뱉어서", "바닥에 떨어진 음식을 주워 먹어서", "신던 양말을 식탁 위에 올려놔서",
            "음식물 쓰레기를 몇 주째 안 버려서", "화장실에 다녀와서 손을 안 씻어서", "남의 험담을 아무렇지 않게 늘어놔서",
            "상한 우유를 그냥 마셔서", "손톱을 깎아서 바닥에 그대로 둬서", "먹던 껌을 책상 밑에 붙여 놔서",
        ),
        "solo_causes": (
            "식당 국에서 머리카락이 나와서", "지하철 손잡이가 끈적끈적해서", "냉장고 구석에서 곰팡이 핀 반찬이 나와서",
            "공중화장실 바닥이 너무 더러워서", "배수구에서 벌레가 기어 나와서", "옆 사람 땀 냄새가 너무 심해서",
        ),
        "reactions": (
            "진짜 역겨워요.", "속이 울렁거려.", "생각만 해도 토할 것 같아.", "정말 더러워서 못 보겠어요.",
            "소름 끼치게 싫어.", "비위가 상해서 밥을 못 먹겠어.", "너무 불쾌해요.", "보기만 해도 징그러워.",
            "다시는 상대하고 싶지 않아.",
        ),
    },
    "fear": {
        "openers": ("", "", "어떡해,", "있잖아,"),
        "person_causes": (
            "밤새 연락이 안 돼서", "사고가 났다는 전화를 받아서", "갑자기 쓰러졌다고 해서", "수술실에 들어갔다고 해서",
            "밤늦게까지 집에 안 들어와서", "모르는 사람한테 쫓기고 있다고 해서", "산에서 길을 잃었다고 연락해서",
            "이상한 사람이 집 앞에 서 있다고 해서", "열이 사십 도까지 올랐다고 해서", "혼자 밤길을 걷고 있다고 해서",
        ),
        "solo_causes": (
            "밤길에 누가 계속 따라오는 것 같아서", "집에 혼자 있는데 문 두드리는 소리가 들려서", "엘리베이터가 갑자기 멈춰서",
            "비행기가 심하게 흔들려서", "새벽에 누가 현관 비밀번호를 누르는 소리가 나서", "건물이 지진 난 것처럼 흔들려서",
            "모르는 번호로 자꾸 협박 문자가 와서", "내일 검사 결과가 나온다고 해서",
        ),
        "reactions": (
            "너무 무서워요.", "심장이 터질 것 같아.", "온몸이 떨려요.", "잠을 한숨도 못 잤어.", "겁이 나서 꼼짝도 못 하겠어.",
            "너무 불안해.", "식은땀이 났어요.", "혹시 무슨 일이 생길까 봐 두려워.", "숨이 막힐 것 같아요.",
        ),
    },
    "surprise": {
        "openers": ("", "어머,", "헐,", "와,", "세상에,"),
        "person_causes": (
            "말도 없이 집에 찾아와서", "갑자기 결혼한다고 해서", "머리를 완전히 짧게 잘라서", "벌써 아이 아빠가 됐다고 해서",
            "회사를 그만뒀다고 해서", "한국말을 이렇게 잘해서", "복권에 당첨됐다고 해서", "십 킬로그램이나 빠져서 나타나서",
            "외국으로 이민을 간다고 해서", "내 옛날 일기장을 찾아서 들고 와서",
        ),
        "solo_causes": (
            "십 년 만에 초등학교 친구를 길에서 만나서", "잃어버린 지갑이 그대로 돌아와서", "한겨울에 갑자기 벚꽃이 펴서",
            "모르는 사람이 내 이름을 불러서", "문을 열었더니 사람들이 잔뜩 모여 있어서", "시험 문제가 어제 본 거랑 똑같아서",
        ),
        "reactions": (
            "깜짝 놀랐어요!", "진짜? 말도 안 돼!", "이게 무슨 일이야?", "정말 믿기지가 않아!", "깜짝이야!",
            "눈을 의심했어요.", "입이 떡 벌어졌어.", "이게 꿈이야 생시야?", "놀라서 말이 안 나왔어요.",
        ),
    },
}

NEUTRAL_WHEN = ("내일 오전 열 시에", "이번 주 금요일에", "다음 주 월요일에", "오늘 저녁 일곱 시에", "모레 오후에",
                "다음 달 초에", "토요일 아침에", "점심 먹고 나서")
NEUTRAL_PLANS = ("팀 회의가 있어요.", "은행에 들러야 해요.", "세탁소에 옷을 맡기러 가요.", "장을 보러 갈 거예요.",
                 "서류를 내면 돼요.", "택배가 도착할 예정이에요.", "건물 점검이 있대요.", "분리수거를 하는 날이에요.",
                 "치과 예약이 잡혀 있어요.", "도서관에 책을 반납해야 해요.", "버스 노선이 바뀐대요.",
                 "엘리베이터 공사가 시작된대요.")
NEUTRAL_TAILS = ("", "참고로 알려 드려요.", "달력에 적어 둘게요.", "시간 맞춰서 가면 돼요.", "그렇게 알고 있을게요.",
                 "자세한 건 문자로 보낼게요.")
NEUTRAL_HABITS = ("요즘 회사 근처에서 혼자 살아요.", "매일 아침 지하철로 출근해요.", "주말마다 도서관에 가요.",
                  "점심은 보통 구내식당에서 먹어요.", "저녁에는 한 시간씩 걸어요.", "커피보다 차를 더 자주 마셔요.",
                  "이번 학기에 수업을 네 개 들어요.", "아침마다 신문을 읽어요.", "버스보다 자전거를 더 자주 타요.",
                  "퇴근하면 바로 집에 가요.")

# Events that could be good or bad news: the wording names no feeling.
AMBIGUOUS_PERSON = ("갑자기 나한테 전화를 했어요.", "그 얘기를 처음으로 꺼냈어.", "시험 결과를 알려 줬어요.",
                    "내 방에 먼저 와 있었어.", "내일 우리 집에 온다고 했어요.", "회사를 옮긴다고 했어.",
                    "옛날 사진을 보여 줬어요.", "아무 말도 없이 나갔어.", "편지 한 장을 남기고 갔어요.",
                    "나를 한참 동안 쳐다봤어.", "결과가 나왔다고 문자를 보냈어요.", "이번 주에 이사를 한대.",
                    "그 일을 전부 알고 있었어요.", "내 앞에 상자 하나를 놓고 갔어.", "오늘 밤에 할 얘기가 있대요.",
                    "문 앞에 서 있었어.")
AMBIGUOUS_SOLO = ("결과가 드디어 나왔어요.", "그 사람한테서 연락이 왔어.", "집에 와 보니까 문이 열려 있었어요.",
                  "우리 팀 발표 순서가 바뀌었대.", "회사에서 그 소식을 들었어요.", "엄마가 그 얘기를 하셨어.",
                  "메일함에 그 편지가 와 있었어요.", "내 이름이 명단 맨 위에 있었어.")


def has_final_consonant(word: str) -> bool:
    """True when the last Hangul syllable ends in a consonant (받침): picks 이 over 가, 은 over 는."""
    last = word[-1]
    return 0xAC00 <= ord(last) <= 0xD7A3 and (ord(last) - 0xAC00) % 28 != 0


def subject(word: str) -> str:
    return word + ("이" if has_final_consonant(word) else "가")


def topic(word: str) -> str:
    return word + ("은" if has_final_consonant(word) else "는")


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def make_sentence(kind: str, rng: np.random.Generator) -> str:
    """One sentence for an emotion (cue wording) or for `AMBIGUOUS` (emotion-neutral wording)."""
    if kind == AMBIGUOUS:
        if rng.random() < 0.8:
            return _join(_pick(rng, TIMES), subject(_pick(rng, PEOPLE)), _pick(rng, AMBIGUOUS_PERSON))
        return _join(_pick(rng, TIMES), _pick(rng, AMBIGUOUS_SOLO))
    if kind == "neutral":
        if rng.random() < 0.7:
            return _join(_pick(rng, NEUTRAL_WHEN), _pick(rng, NEUTRAL_PLANS), _pick(rng, NEUTRAL_TAILS))
        return _join(topic(_pick(rng, PEOPLE)), _pick(rng, NEUTRAL_HABITS))
    if kind not in BANK:
        raise ValueError(f"no sentences for {kind!r}; choose one of {sorted(BANK) + ['neutral', AMBIGUOUS]}")
    bank = BANK[kind]
    n_person, n_solo = len(bank["person_causes"]), len(bank["solo_causes"])
    if rng.random() < n_person / (n_person + n_solo):
        cause = _join(subject(_pick(rng, PEOPLE)), _pick(rng, bank["person_causes"]))
    else:
        cause = _pick(rng, bank["solo_causes"])
    return _join(_pick(rng, bank["openers"]), _pick(rng, TIMES), cause, _pick(rng, bank["reactions"]))


class SentenceSource:
    """Hands out sentences per kind; with probability `repeat` it reuses one already handed out.

    Reuse mimics the real releases, where the same script is read many times (16,137 distinct
    sentences in 19,374 rows), so a random split would leak sentences between train and test.
    """

    def __init__(self, rng: np.random.Generator, repeat: float = 0.15, max_tries: int = 200):
        self.rng, self.repeat, self.max_tries = rng, repeat, max_tries
        self.used: dict[str, list[str]] = {}
        self.seen: set[str] = set()

    def next(self, kind: str) -> str:
        used = self.used.setdefault(kind, [])
        if used and self.rng.random() < self.repeat:
            return _pick(self.rng, used)
        for _ in range(self.max_tries):
            sentence = make_sentence(kind, self.rng)
            if sentence not in self.seen:
                break
        # After max_tries collisions the space is exhausted: accept a repeat rather than loop forever.
        self.seen.add(sentence)
        used.append(sentence)
        return sentence
