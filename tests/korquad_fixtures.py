"""Small KorQuAD-format Korean data written for these tests, a tiny WordPiece tokenizer, the shared dev set."""

import copy
import json
from pathlib import Path

import pytest
import tokenizers
from transformers import BertTokenizerFast

SHARED_KORQUAD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "korquad_v1"
DEV_FILE = SHARED_KORQUAD / "KorQuAD_v1.0_dev.json"
DEV_SAMPLE_PREDICTIONS = SHARED_KORQUAD / "dev-evaluate-in1.sample_prediction.json"

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# examples/run_korquad.py's options for a quiet, CPU, offline, seeded run that saves no checkpoints.
QUIET = ["--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--save_strategy", "no", "--seed", "0"]

_SEJONG_1 = (
    "세종대왕은 조선의 제4대 국왕으로, 1418년부터 1450년까지 재위하였다. 그는 1443년에 《훈민정음》을 "
    "창제하였고, 1446년에 이를 반포하였다. 집현전의 학자들과 함께 농업과 의학, 음악 분야의 책을 펴냈다."
)
_SEJONG_2 = (
    "세종 때에는 과학 기술도 크게 발전하였다. 장영실은 물시계인 자격루를 만든 과학자로 알려져 있다. "
    "비의 양을 재는 측우기는 1441년에 만들어졌으며, 해시계인 앙부일구도 이 시기에 제작되었다."
)
_BUSAN = (
    "부산광역시는 대한민국 남동부에 있는 광역시로, 인구는 약 330만 명이다. 매년 10월에는 "
    "'부산국제영화제'가 열린다. 해운대 해수욕장은 여름철에 관광객이 가장 많이 찾는 곳이다. "
    "〈부산 갈매기〉는 부산을 대표하는 노래로 야구장에서 자주 불린다."
)
_JEJU = (
    "제주도는 대한민국에서 가장 큰 섬이다. 섬 한가운데에는 높이 1,947m의 한라산이 있으며, 한라산 정상에는 "
    "백록담이라는 화구호가 있다. 제주도의 옛 이름은 탐라(耽羅)이다. 돌, 바람, 여자가 많다고 하여 "
    "삼다도라고도 불린다. 2007년에 제주 화산섬과 용암 동굴이 유네스코 세계자연유산으로 등재되었다."
)


def _qa(id_: str, question: str, context: str, answer: str) -> dict:
    return {"id": id_, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}


_FIXTURE = {
    "version": "KorQuAD_v1.0_fixture",
    "data": [
        {
            "title": "세종대왕",
            "paragraphs": [
                {
                    "context": _SEJONG_1,
                    "qas": [
                        _qa("sejong-0-0", "세종대왕이 훈민정음을 창제한 해는?", _SEJONG_1, "1443년"),
                        _qa("sejong-0-1", "세종대왕이 창제한 문자의 이름은?", _SEJONG_1, "《훈민정음》"),
                        _qa("sejong-0-2", "세종대왕은 조선의 몇 번째 국왕인가?", _SEJONG_1, "제4대"),
                    ],
                },
                {
                    "context": _SEJONG_2,
                    "qas": [
                        # The answer ends inside the word "장영실은": its token span may cover more.
                        _qa("sejong-1-0", "자격루를 만든 과학자는 누구인가?", _SEJONG_2, "장영실"),
                        _qa("sejong-1-1", "측우기가 만들어진 해는?", _SEJONG_2, "1441년"),
                    ],
                },
            ],
        },
        {
            "title": "부산광역시",
            "paragraphs": [
                {
                    "context": _BUSAN,
                    "qas": [
                        _qa("busan-0-0", "부산에서 매년 10월에 열리는 영화제는?", _BUSAN, "부산국제영화제"),
                        _qa("busan-0-1", "부산의 인구는 약 몇 명인가?", _BUSAN, "약 330만 명"),
                        _qa(
                            "busan-0-2",
                            "부산광역시를 소개한 이 문단에서 여름철에 관광객이 가장 많이 찾는 곳으로 소개된 "
                            "해수욕장의 이름은 무엇이며, 그곳은 어느 도시에 있는가?",
                            _BUSAN,
                            "해운대 해수욕장",
                        ),
                        _qa("busan-0-3", "부산을 대표하는 노래는?", _BUSAN, "〈부산 갈매기〉"),
                    ],
                }
            ],
        },
        {
            "title": "제주도",
            "paragraphs": [
                {
                    "context": _JEJU,
                    "qas": [
                        _qa("jeju-0-0", "한라산의 높이는?", _JEJU, "1,947m"),
                        _qa("jeju-0-1", "한라산 정상에 있는 화구호는?", _JEJU, "백록담"),
                        _qa("jeju-0-2", "제주도의 옛 이름은?", _JEJU, "탐라(耽羅)"),
                        _qa("jeju-0-3", "제주 화산섬과 용암 동굴이 세계자연유산에 등재된 해는?", _JEJU, "2007년"),
                    ],
                }
            ],
        },
    ],
}

N_QUESTIONS = 13


def korquad_fixture() -> dict:
    """A fresh copy of the fixture in the official layout (3 articles, 4 paragraphs, 13 questions)."""
    return copy.deepcopy(_FIXTURE)


def fixture_texts() -> list[str]:
    """Every context and question of the fixture."""
    return [
        text
        for article in _FIXTURE["data"]
        for paragraph in article["paragraphs"]
        for text in [paragraph["context"]] + [qa["question"] for qa in paragraph["qas"]]
    ]


def write_json(path: Path, value) -> Path:
    """Write `value` as UTF-8 JSON to `path` and return the path."""
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def tiny_tokenizer(texts: list[str], *, vocab_size: int = 300) -> BertTokenizerFast:
    """A cased WordPiece `BertTokenizerFast` trained on `texts`; [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0..4."""
    wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    wordpiece.train_from_iterator(
        texts, vocab_size=vocab_size, limit_alphabet=4000, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    return BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=False, strip_accents=False)


def require_dev_data() -> None:
    """Skip the calling test where the shared KorQuAD dev files are absent."""
    if not (DEV_FILE.is_file() and DEV_SAMPLE_PREDICTIONS.is_file()):
        pytest.skip(f"the KorQuAD v1.0 dev set is not at {SHARED_KORQUAD}")
