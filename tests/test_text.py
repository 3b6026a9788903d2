import random
import unicodedata

import pytest

from reformer_ko.data.text import is_blank, strip_invisible, to_nfc

SENTENCE = "세종은 1443년에 《훈민정음》을 창제하였다."


@pytest.mark.parametrize(
    "line", ["", " \t\r\n", "\u3000\u00a0\u2003", "\ufeff", "\u200b\u200c\u200d\u2060", "\x00\x1f\x7f", "\u00ad \n"]
)
def test_a_line_of_spaces_format_or_control_characters_is_blank(line):
    assert is_blank(line)


@pytest.mark.parametrize("line", ["가", " . ", "\ue000", "\u200b0\u200b", "\ufeff#"])
def test_a_line_with_one_visible_character_is_not_blank(line):
    assert not is_blank(line)


def test_strip_invisible_keeps_what_is_between_the_first_and_last_visible_characters():
    assert strip_invisible("\ufeff\u200b 세종\u00a0대왕 \u200d\u3000\r\n") == "세종\u00a0대왕"
    assert strip_invisible(SENTENCE + "\n") == SENTENCE


def test_nfc_text_maps_every_span_to_itself():
    normalized = to_nfc(SENTENCE)
    assert normalized.text == SENTENCE
    assert normalized.original_span(4, 9) == (4, 9)


def test_a_span_of_composed_text_maps_to_the_decomposed_characters_it_came_from():
    decomposed = unicodedata.normalize("NFD", SENTENCE)
    normalized = to_nfc(decomposed)
    assert normalized.text == SENTENCE
    start, end = SENTENCE.index("1443년"), SENTENCE.index("1443년") + len("1443년")
    original_start, original_end = normalized.original_span(start, end)
    assert decomposed[original_start:original_end] == unicodedata.normalize("NFD", "1443년")
    assert normalized.original_span(len(SENTENCE), len(SENTENCE)) == (len(decomposed), len(decomposed))


def test_a_span_of_part_of_a_composed_character_widens_to_the_whole_character():
    # e, dot below, circumflex: NFC composes all three into one character (ệ).
    normalized = to_nfc("xe\u0323\u0302y")
    assert normalized.text == "x\u1ec7y"
    assert normalized.original_span(1, 2) == (1, 4)
    assert normalized.original_span(2, 3) == (4, 5)


def test_the_composed_text_is_the_nfc_of_the_whole_text_for_any_mix_of_jamo_and_marks():
    alphabet = [chr(code) for code in (*range(0x1100, 0x1113), *range(0x1161, 0x1176), *range(0x11A8, 0x11C3))]
    alphabet += list("가각ab e\u0301\u0300\u0323\u212b\u0345\u03b9")
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        normalized = to_nfc(text)
        assert normalized.text == unicodedata.normalize("NFC", text)
        for index, character in enumerate(normalized.text):
            start, end = normalized.original_span(index, index + 1)
            assert character in unicodedata.normalize("NFC", text[start:end])
