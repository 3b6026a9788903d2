"""MediaWiki XML exports written by the tests: the input `reformer-ko prepare-corpus` reads from Wikipedia."""

import bz2
from pathlib import Path
from xml.sax.saxutils import escape


def mediawiki_export(pages) -> str:
    """A MediaWiki XML export (the pages-articles layout) of `(title, namespace, wikitext)` pages; a wikitext of
    `#넘겨주기 [[target]]` makes a redirect page."""
    body = []
    for page_id, (title, namespace, wikitext) in enumerate(pages, 1):
        redirect = f'    <redirect title="{escape(wikitext[8:-2])}" />\n' if wikitext.startswith("#넘겨주기") else ""
        body.append(
            f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{namespace}</ns>\n    <id>{page_id}</id>\n"
            f"{redirect}    <revision>\n      <id>{page_id + 100}</id>\n      <model>wikitext</model>\n"
            f'      <format>text/x-wiki</format>\n      <text bytes="{len(wikitext.encode())}" xml:space="preserve">'
            f"{escape(wikitext)}</text>\n    </revision>\n  </page>\n"
        )
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="ko">\n'
        "  <siteinfo>\n    <sitename>위키백과</sitename>\n    <dbname>kowiki</dbname>\n    <namespaces>\n"
        '      <namespace key="0" case="first-letter" />\n'
        '      <namespace key="10" case="first-letter">틀</namespace>\n    </namespaces>\n  </siteinfo>\n'
        + "".join(body)
        + "</mediawiki>\n"
    )


def corpus_as_wiki_dump(corpus, dump) -> Path:
    """A `.xml.bz2` dump with one article per document of a corpus-format file: its sentences as one paragraph,
    under a heading, with a reference and a category, as a stand-in for kowiki-latest-pages-articles.xml.bz2."""
    documents = Path(corpus).read_text(encoding="utf-8").strip().split("\n\n")
    pages = [
        (f"문서 {number}", 0, f"== 개요 ==\n{' '.join(document.split())}<ref>출처</ref>\n\n[[분류:문서]]")
        for number, document in enumerate(documents)
    ]
    Path(dump).write_bytes(bz2.compress(mediawiki_export(pages).encode("utf-8")))
    return Path(dump)
