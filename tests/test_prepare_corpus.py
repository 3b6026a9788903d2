"""`reformer-ko prepare-corpus`: Wikipedia dumps, wikiextractor output, JSON Lines, plain text → the corpus format."""

import bz2
import gzip
import json
import sys
import unicodedata
from pathlib import Path

import pytest
from pretraining_fixtures import CORPUS, ROOT, load_script
from wiki_fixtures import mediawiki_export

from reformer_ko.cli import main as reformer_ko
from reformer_ko.data import load_corpus, pack_mlm_blocks, read_documents
from reformer_ko.data.cleaning import CleaningOptions, DocumentCleaner
from reformer_ko.data.prepare import SUMMARY_FILE, PrepareError, parse_size, prepare_corpus
from reformer_ko.data.sentences import SentenceSplitter
from reformer_ko.data.sources import HEADING, LIST_ITEM, PARAGRAPH, Block, SourceError, read_source
from reformer_ko.errors import UserInputError
from reformer_ko.tokenization import train_tokenizer

KIMCHI = """{{다른 뜻|김치 (동음이의)}}
{{정보상자 음식
| 이름 = 김치
| 그림 = [[파일:Kimchi.jpg|250px]]
}}
'''김치'''({{llang|en|Kimchi}})는 [[한국]]의 대표적인 [[발효]] 음식이다.<ref name="a">{{웹 인용|url=http://kimchi.kr}}</ref> \
배추와 무를 소금에 절인 뒤 양념을 버무려 만든다.<ref name="a" />
[[파일:Kimchi2.jpg|섬네일|왼쪽|시장에서 파는 김치]]
<!-- 편집자 주석 -->
== 역사 ==
김치의 역사는 [[삼국 시대]]로 거슬러 올라간다.고추가 들어온 것은 17세기 이후이다.<ref>《한국 음식사》, 2001.</ref>
그는 "김치가 정말 좋아요. 또 먹을게요."라고 말했다. 김치 1.5kg의 값은 지역마다 다르다.

=== 종류 ===
* 배추김치
* 깍두기

{| class="wikitable"
! 종류 !! 재료
|-
| 배추김치 || 배추
|}
== 각주 ==
{{각주}}

[[분류:한국 요리]]
"""
SEOUL = """{{위키데이터 속성 추적}}
'''서울특별시'''는 [[대한민국]]의 [[수도]]이다.<ref>{{서적 인용|제목=서울}}</ref> [[한강]]이 도시의 가운데를 가로질러 흐른다.
조선 시대에는 한양이라고 불렸다. 오늘날 서울에는 천만 명 가까운 사람이 산다.<br />서울은 정치와 경제의 중심지이다.
서울에는 궁궐과 성곽 같은 옛 건축물이 많이 남아 있어 해마다 많은 관광객이 찾아온다.
== 같이 보기 ==
* [[부산광역시]]
"""
HANGUL = """'''한글'''은 [[세종]]이 1443년에 창제한 [[문자]]이다. [http://hangeul.kr 누리집]에서 자세히 볼 수 있다.
한글은 소리를 적는 글자이며 배우기 쉽다. 오늘날 한국과 북한에서 공식 문자로 쓰인다.
자음 열넷과 모음 열로 이루어져 있으며 음절 단위로 모아 쓴다.
해마다 시월 구일은 한글날로 기념한다.
"""
STUB = "'''토막'''은 짧은 글이다."
KIMCHI_SENTENCES = [
    "김치는 한국의 대표적인 발효 음식이다.",
    "배추와 무를 소금에 절인 뒤 양념을 버무려 만든다.",
    "김치의 역사는 삼국 시대로 거슬러 올라간다.",
    "고추가 들어온 것은 17세기 이후이다.",
    '그는 "김치가 정말 좋아요. 또 먹을게요."라고 말했다.',
    "김치 1.5kg의 값은 지역마다 다르다.",
]


WIKI_PAGES = [
    ("김치", 0, KIMCHI),
    ("틀:각주", 10, "<references />"),
    ("서울", 0, SEOUL),
    ("서울시", 0, "#넘겨주기 [[서울]]"),
    ("한글", 0, HANGUL),
    ("한글 (문자)", 0, HANGUL),  # an exact duplicate
    ("토막", 0, STUB),  # too short
]


@pytest.fixture
def wiki_dump(tmp_path):
    path = tmp_path / "kowiki-latest-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(mediawiki_export(WIKI_PAGES).encode("utf-8")))
    return path


def prepared(inputs, output, **options):
    """The documents of the corpus `prepare_corpus` writes from `inputs` into `output`."""
    prepare_corpus(inputs, output, **options)
    return list(read_documents(output))


def run_cli(arguments, capsys):
    """(exit status, error lines) of `reformer-ko prepare-corpus ARGUMENTS`; a traceback fails the test."""
    status = reformer_ko(["prepare-corpus", *map(str, arguments)])
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return status, [line for line in stderr.splitlines() if line.startswith("reformer-ko prepare-corpus: error:")]


def leftovers(directory):
    return sorted(path.name for path in Path(directory).iterdir() if path.name.startswith("."))


# Wikipedia dumps ---------------------------------------------------------------------------------------------


def test_wiki_dump_becomes_one_sentence_per_line_with_a_blank_line_between_documents(wiki_dump, tmp_path):
    prepare_corpus(wiki_dump, tmp_path / "corpus")
    text = (tmp_path / "corpus" / "corpus-00000-of-00001.txt").read_text(encoding="utf-8")
    documents = text.split("\n\n")
    assert documents[0].splitlines() == KIMCHI_SENTENCES
    assert len(documents) == 3 and text.endswith("다.\n") and "\n\n\n" not in text


def test_wiki_markup_tables_references_and_categories_are_dropped(wiki_dump, tmp_path):
    text = "\n".join(sentence for document in prepared(wiki_dump, tmp_path / "corpus") for sentence in document)
    for residue in ("{{", "}}", "[[", "|", "<ref", "wikitable", "분류", "파일", "()", "http", "'''"):
        assert residue not in text


def test_redirects_template_pages_duplicates_and_short_articles_are_skipped(wiki_dump, tmp_path):
    summary = prepare_corpus(wiki_dump, tmp_path / "corpus")
    firsts = [document[0] for document in read_documents(tmp_path / "corpus")]
    assert firsts == ["김치는 한국의 대표적인 발효 음식이다.", "서울특별시는 대한민국의 수도이다.", "한글은 세종이 1443년에 창제한 문자이다."]
    assert (summary.documents_read, summary.documents_written) == (5, 3)
    assert summary.dropped["duplicate documents dropped"] == 1
    assert summary.dropped["short documents dropped"] == 1


def test_headings_and_list_items_are_dropped_by_default_and_kept_on_request(wiki_dump, tmp_path):
    default = prepared(wiki_dump, tmp_path / "default")[0]
    kept = prepared(wiki_dump, tmp_path / "kept", cleaning=CleaningOptions(headings="keep", lists="keep"))[0]
    assert not {"역사", "종류", "배추김치", "깍두기"} & set(default)
    assert kept[kept.index("역사") + 1] == "김치의 역사는 삼국 시대로 거슬러 올라간다."
    assert kept[kept.index("종류") :][:3] == ["종류", "배추김치", "깍두기"]


def test_an_uncompressed_dump_reads_like_the_bz2_one(wiki_dump, tmp_path):
    plain = tmp_path / "kowiki.xml"
    plain.write_bytes(bz2.decompress(wiki_dump.read_bytes()))
    assert prepared(plain, tmp_path / "plain") == prepared(wiki_dump, tmp_path / "bz2")


def test_wiki_blocks_mark_headings_and_list_items(wiki_dump):
    kimchi = next(read_source(wiki_dump, "wiki-dump"))
    assert Block(HEADING, "역사") in kimchi and Block(LIST_ITEM, "깍두기") in kimchi
    assert kimchi[0] == Block(PARAGRAPH, "김치()는 한국의 대표적인 발효 음식이다. 배추와 무를 소금에 절인 뒤 양념을 버무려 만든다.")


def test_wikiextractor_output_in_json_and_doc_form_reads_as_the_same_documents(tmp_path):
    articles = [("5", "한글", "한글은 문자이다. 배우기 쉽다.\n자음과 모음으로 이루어진다."), ("7", "서울", "서울은 수도이다.\n한강이 흐른다.")]
    json_dir, doc_dir = tmp_path / "json" / "AA", tmp_path / "doc" / "AA"
    json_dir.mkdir(parents=True)
    doc_dir.mkdir(parents=True)
    (json_dir / "wiki_00").write_text(
        "".join(json.dumps({"id": id_, "title": title, "text": text}) + "\n" for id_, title, text in articles)
    )
    (doc_dir / "wiki_00").write_text(
        "".join(f'<doc id="{id_}" title="{title}">\n{title}\n\n{text}\n</doc>\n' for id_, title, text in articles)
    )
    from_json = list(read_source(tmp_path / "json", "wiki-extracted"))
    assert from_json == list(read_source(tmp_path / "doc", "wiki-extracted"))
    assert from_json[1] == [Block(PARAGRAPH, "서울은 수도이다."), Block(PARAGRAPH, "한강이 흐른다.")]


# JSON Lines and plain text -----------------------------------------------------------------------------------

LONG_SENTENCES = [
    "한국어 말뭉치의 문서는 여러 문장으로 이루어진다.",
    "이 문장들은 한 줄에 하나씩 쓰인다.",
    "문서와 문서 사이에는 빈 줄이 하나 들어간다.",
    "토크나이저와 언어 모델은 이 형식을 그대로 읽는다.",
    "그래서 흩어진 원문을 먼저 이 형식으로 바꾸어야 한다.",
]
LONG = " ".join(LONG_SENTENCES)  # 101 characters without spaces: just above the 100 of the short-document rule


def test_jsonl_documents_come_from_the_text_field(tmp_path):
    path = tmp_path / "news.jsonl"
    records = ({"id": index, "body": f"{index}번째 기사이다. {LONG}"} for index in range(3))
    path.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records))
    documents = prepared(path, tmp_path / "corpus", text_field="body")
    assert [document[0] for document in documents] == ["0번째 기사이다.", "1번째 기사이다.", "2번째 기사이다."]
    assert documents[0][1:] == LONG_SENTENCES


def test_jsonl_dotted_text_field_reads_each_paragraph_of_a_modu_document(tmp_path):
    record = {"id": "NWRW1800000022", "paragraph": [{"id": "1", "form": "첫 문단이다."}, {"id": "2", "form": LONG}]}
    path = tmp_path / "modu.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n")
    assert prepared(path, tmp_path / "corpus", text_field="paragraph.form") == [["첫 문단이다.", *LONG_SENTENCES]]


def test_plain_text_in_blank_line_layout_keeps_documents_apart(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(f"{LONG}\n첫 문서의 둘째 문단이다.\n\n\n{LONG} 둘째 문서이다.\n")
    documents = prepared(path, tmp_path / "corpus")
    assert [len(document) for document in documents] == [6, 6]
    assert documents[0][-1] == "첫 문서의 둘째 문단이다." and documents[1][-1] == "둘째 문서이다."


def test_plain_text_in_line_layout_makes_each_line_a_document(tmp_path):
    path = tmp_path / "reviews.txt.gz"
    path.write_bytes(gzip.compress(f"{LONG}\n{LONG} 끝.\n".encode()))
    documents = prepared(path, tmp_path / "corpus", text_layout="line")
    assert [len(document) for document in documents] == [5, 6]


def test_output_is_nfc_even_when_the_input_is_decomposed(tmp_path):
    path = tmp_path / "nfd.txt"
    path.write_text(unicodedata.normalize("NFD", LONG), encoding="utf-8")
    (document,) = prepared(path, tmp_path / "corpus")
    assert all(unicodedata.is_normalized("NFC", sentence) for sentence in document)
    assert document == LONG_SENTENCES


# Cleaning rules ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, cleaned",
    [
        ("가타카나(, , )는 일본어의 문자이다.", "가타카나는 일본어의 문자이다."),
        ("다양체(多樣體,)는 공간이다. 점(, 點)이다. 쌍(a, b)이다.", "다양체(多樣體)는 공간이다. 점(點)이다. 쌍(a, b)이다."),
        ("수도이다.[1][주 2] 크다 [출처 필요].", "수도이다. 크다."),
        ("서울<ref>서적</ref>은<br/> 크다.", "서울은 크다."),
        ("formula_1는 수식이다.", "는 수식이다."),
        ("영화 <기생충>과 <Star Wars>는 유명하다.", "영화 <기생충>과 <Star Wars>는 유명하다."),
    ],
)
def test_inline_markup_is_stripped_and_titles_in_angle_brackets_are_kept(line, cleaned):
    cleaner = DocumentCleaner(CleaningOptions(min_document_chars=0))
    assert cleaner.clean([Block(PARAGRAPH, line)]) == [cleaned]


@pytest.mark.parametrize("line", ["{| class=wikitable", "| 배추 || 무", "! 종류", "}}", "분류:한국 요리", "(2001년 기준)", "* * *"])
def test_markup_lines_are_dropped_and_counted(line):
    cleaner = DocumentCleaner(CleaningOptions(min_document_chars=0))
    assert cleaner.clean([Block(PARAGRAPH, line), Block(PARAGRAPH, "남는 문장이다.")]) == ["남는 문장이다."]
    assert cleaner.counts["markup lines dropped"] == 1


def test_a_line_that_only_starts_and_ends_with_parentheses_is_kept():
    line = "(19라운드 경기는 이듬해 치러졌다.) 대회는 8월 7일부터 진행되었다. (5)"
    assert DocumentCleaner(CleaningOptions(min_document_chars=0)).clean([Block(PARAGRAPH, line)]) == [line]


def test_every_rule_can_be_turned_off(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("짧다[1].\n\n짧다[1].\n")
    off = CleaningOptions(strip_markup=False, drop_markup_lines=False, min_document_chars=0, deduplicate=False)
    assert prepared(path, tmp_path / "corpus", cleaning=off) == [["짧다[1]."], ["짧다[1]."]]


# Sentence splitting ------------------------------------------------------------------------------------------


def test_sentences_end_at_korean_endings_without_a_space_or_a_full_stop():
    splitter = SentenceSplitter(num_workers=1)
    assert splitter.split("어디 가세요?네, 학교에 가요!오늘은 날씨가 좋네요") == ["어디 가세요?", "네, 학교에 가요!", "오늘은 날씨가 좋네요"]


def test_an_opening_bracket_goes_to_the_sentence_it_opens():
    splitter = SentenceSplitter(num_workers=1)
    assert splitter.split("표기법을 따랐다.(다만, 한글 표기가 없다.) 다음 문장이다.") == [
        "표기법을 따랐다.", "(다만, 한글 표기가 없다.)", "다음 문장이다."
    ]  # fmt: skip


def test_a_bracketed_word_stays_with_its_particle():
    splitter = SentenceSplitter(num_workers=1)
    assert splitter.split("그는 말했다. 《책》을 읽었다.《다른 책》도 읽었다.") == [
        "그는 말했다.", "《책》을 읽었다.", "《다른 책》도 읽었다."
    ]  # fmt: skip


def test_split_documents_keeps_the_order_and_reads_the_input_lazily():
    consumed = []

    def documents():
        for index in range(10_000):
            consumed.append(index)
            yield [f"{index}번 문서의 첫 문장이다. 둘째 문장이다.", "다음 문단이다."]

    split = SentenceSplitter(num_workers=2).split_documents(documents())
    first = [next(split) for _ in range(50)]
    assert first[7] == ["7번 문서의 첫 문장이다.", "둘째 문장이다.", "다음 문단이다."]
    assert len(consumed) < 500


# Output ------------------------------------------------------------------------------------------------------


def test_shards_are_cut_between_documents_and_read_back_as_one_corpus(wiki_dump, tmp_path):
    one = prepared(wiki_dump, tmp_path / "one")
    prepare_corpus(wiki_dump, tmp_path / "many", shard_bytes=200)
    assert sorted(path.name for path in (tmp_path / "many").glob("*.txt")) == [
        "corpus-00000-of-00003.txt", "corpus-00001-of-00003.txt", "corpus-00002-of-00003.txt"
    ]  # fmt: skip
    assert list(read_documents(tmp_path / "many")) == one


def test_the_summary_file_records_the_options_and_counts(wiki_dump, tmp_path):
    prepare_corpus(wiki_dump, tmp_path / "corpus")
    record = json.loads((tmp_path / "corpus" / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert record["cleaning"]["min_document_chars"] == 100
    sentences = sum(len(document) for document in read_documents(tmp_path / "corpus"))
    assert record["summary"]["sentences_written"] == sentences


def test_the_corpus_trains_a_tokenizer_and_packs_into_mlm_blocks(wiki_dump, tmp_path):
    prepare_corpus(wiki_dump, tmp_path / "corpus")
    tokenizer = train_tokenizer(tmp_path / "corpus", tmp_path / "tokenizer", vocab_size=200, limit_alphabet=150)
    documents = load_corpus(tmp_path / "corpus", cache_dir=tmp_path / "cache")
    blocks = pack_mlm_blocks(documents, tokenizer, 64)
    assert documents["sentences"] == list(read_documents(tmp_path / "corpus"))
    assert len(blocks) >= 3 and all(block[0] == tokenizer.cls_token_id for block in blocks["input_ids"])


def test_an_output_directory_with_files_is_refused_unless_overwrite(wiki_dump, tmp_path, capsys):
    output = tmp_path / "corpus"
    output.mkdir()
    (output / "old-00000-of-00009.txt").write_text("옛 문장이다.\n")
    status, errors = run_cli(["--input", wiki_dump, "--output", output], capsys)
    assert status == 1 and len(errors) == 1 and "--overwrite" in errors[0]
    assert run_cli(["--input", wiki_dump, "--output", output, "--overwrite"], capsys)[0] == 0
    assert sorted(path.name for path in output.iterdir()) == ["corpus-00000-of-00001.txt", SUMMARY_FILE]


# Bad input: one line, exit status 1, nothing written ---------------------------------------------------------


def bad_input_fails_cleanly(arguments, tmp_path, capsys):
    """The one error line of a run that must fail, after checking that it left nothing behind."""
    output = tmp_path / "out" / "corpus"
    status, errors = run_cli([*arguments, "--output", output], capsys)
    assert status == 1 and len(errors) == 1
    assert not output.exists() and (not output.parent.exists() or not any(output.parent.iterdir()))
    return errors[0]


def test_a_file_that_is_not_a_dump_is_refused(tmp_path, capsys):
    page = tmp_path / "kowiki.xml"
    page.write_text("<html><body>404 Not Found</body></html>")
    assert "not a MediaWiki XML dump" in bad_input_fails_cleanly(["--input", page], tmp_path, capsys)


def test_a_dump_without_wikiextractor_installed_says_how_to_install_it(wiki_dump, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wikiextractor", None)  # as if not installed (it is an optional extra)
    monkeypatch.setitem(sys.modules, "wikiextractor.extract", None)
    assert "pip install 'reformer-ko[wiki]'" in bad_input_fails_cleanly(["--input", wiki_dump], tmp_path, capsys)


def test_a_text_file_named_like_a_dump_is_refused(tmp_path, capsys):
    page = tmp_path / "kowiki.xml.bz2"
    page.write_bytes(bz2.compress("김치는 음식이다.".encode()))
    assert "not a MediaWiki XML dump" in bad_input_fails_cleanly(["--input", page], tmp_path, capsys)


def test_a_truncated_bz2_dump_is_refused_after_documents_were_read(tmp_path, capsys):
    data = bz2.compress(mediawiki_export(WIKI_PAGES * 40).encode("utf-8"))
    dump = tmp_path / "kowiki.xml.bz2"
    dump.write_bytes(data[: len(data) * 3 // 4])
    assert "truncated" in bad_input_fails_cleanly(["--input", dump], tmp_path, capsys)


def test_a_file_that_is_not_bz2_although_named_so_is_refused(tmp_path, capsys):
    dump = tmp_path / "kowiki.xml.bz2"
    dump.write_text(mediawiki_export(WIKI_PAGES))
    assert "not bz2-compressed" in bad_input_fails_cleanly(["--input", dump], tmp_path, capsys)


def test_a_wrong_json_field_names_the_fields_found(tmp_path, capsys):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"id": 1, "title": "김치", "body": LONG}, ensure_ascii=False) + "\n")
    error = bad_input_fails_cleanly(["--input", path], tmp_path, capsys)
    assert "no field 'text'" in error and "'id', 'title', 'body'" in error and "--text-field" in error


def test_a_line_that_is_not_json_is_refused_with_its_line_number(tmp_path, capsys):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"text": LONG}, ensure_ascii=False) + "\n{text: 2}\n")
    assert f"{path}:2: not valid JSON" in bad_input_fails_cleanly(["--input", path], tmp_path, capsys)


def test_an_input_with_no_document_left_is_an_error(tmp_path, capsys):
    path = tmp_path / "short.txt"
    path.write_text("짧다.\n\n짧은 문서이다.\n")
    error = bad_input_fails_cleanly(["--input", path], tmp_path, capsys)
    assert "no document is left" in error and "2 short documents dropped" in error


def test_a_name_without_a_known_suffix_needs_format(tmp_path, capsys):
    path = tmp_path / "corpus.data"
    path.write_text(LONG)
    assert "--format" in bad_input_fails_cleanly(["--input", path], tmp_path, capsys)


def test_invalid_utf8_names_the_line(tmp_path, capsys):
    path = tmp_path / "corpus.txt"
    path.write_bytes(f"{LONG}\n".encode() + b"\xff\xfe broken\n")
    assert f"{path}:2: invalid UTF-8" in bad_input_fails_cleanly(["--input", path], tmp_path, capsys)


@pytest.mark.parametrize("option", [["--min-document-chars", "-1"], ["--shard-size", "big"], ["--num-workers", "0"]])
def test_out_of_range_options_are_argument_errors(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        reformer_ko(["prepare-corpus", "--input", "x.txt", "--output", str(tmp_path / "out"), *option])
    assert exit_.value.code == 2


def test_sizes_read_with_binary_units():
    sizes = parse_size("128M"), parse_size("1G"), parse_size("512KiB"), parse_size("1000")
    assert sizes == (2**27, 2**30, 2**19, 1000)


def test_an_input_inside_the_output_is_not_overwritten(tmp_path):
    output = tmp_path / "data"
    output.mkdir()
    (output / "corpus.txt").write_text(LONG)
    with pytest.raises(PrepareError, match="inside --output"):
        prepare_corpus(output / "corpus.txt", output, overwrite=True)


def test_errors_are_user_input_errors_and_value_errors_for_library_callers(tmp_path):
    with pytest.raises(SourceError, match="input not found"):
        prepare_corpus(tmp_path / "missing.txt", tmp_path / "corpus")
    for error in (SourceError, PrepareError):
        assert issubclass(error, UserInputError) and issubclass(error, ValueError)


# The benchmark -----------------------------------------------------------------------------------------------


def test_the_benchmark_measures_each_size_each_stage_and_deduplication(tmp_path, capsys):
    benchmark = load_script(ROOT / "benchmarks" / "prepare_corpus.py")
    assert benchmark.main(["--sample", str(CORPUS), "--copies", "1", "--split-rounds", "1", "--num-workers", "1"]) == 0
    report = capsys.readouterr().out
    assert "| sample × 1 | 0.1 |" in report
    for stage in ("extraction", "cleaning", "sentence splitting, 1 thread", "writing", "per million documents"):
        assert stage in report


def test_the_benchmark_without_its_sample_says_so(tmp_path, capsys):
    benchmark = load_script(ROOT / "benchmarks" / "prepare_corpus.py")
    assert benchmark.main(["--sample", str(tmp_path / "missing.txt")]) == 0
    assert "nothing to measure" in capsys.readouterr().out
