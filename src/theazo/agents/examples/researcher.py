"""``researcher``: ranks the passages of a small text corpus for a query, with BM25.

It shows an agent that reads bundled data and charges for its work:

* the corpus ships inside the package (``corpus/``) and is read with ``importlib.resources``,
  so it is found whether Theazo runs from a checkout or from an installed wheel;
* progress is reported per document, first while indexing, then while scoring;
* ``ctx.charge`` bills each document's passages as soon as they are scored (0.01 cent per
  passage), so a task stopped half-way has paid for the half it did.

Input::

    {"query": "how do workers claim jobs?", "top_k": 3, "folder": "/srv/notes"}

``top_k`` (1 to 20) defaults to 3; ``folder``, a directory of ``.txt`` and ``.md`` files,
replaces the bundled corpus. Output::

    {"query": "how do workers claim jobs?",
     "results": [{"source": "task-queues.md", "passage": "Workers claim jobs...", "score": 9.3232},
                 ...],
     "summary": "Workers claim jobs atomically so that two workers never run the same job. ..."}

``results`` holds at most ``top_k`` passages that contain a word of the query, best first;
``summary`` is made of the best passage's sentences that share a word with the query (at most
three), or says that no passage matches.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from theazo import Context, agent

PRICE_PER_PASSAGE = 0.01  # cents charged for each passage scored
SUMMARY_SENTENCES = 3  # how many of the best passage's sentences make the summary
DOCUMENT_SUFFIXES = (".md", ".txt")
K1 = 1.5  # BM25: how quickly repeating a term stops adding to the score
B = 0.75  # BM25: how much a long passage is penalised for its length

_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits, in any script
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# the commonest English words, which say nothing about which passage is relevant
_STOPWORD_LIST = """
    a an and are as at be by can do does for from has have how i if in is it its of on or s so
    than that the their them then there these they this to was what when where which who why
    will with you your
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())


class ResearcherInput(BaseModel):
    """A question to look up in the bundled corpus, or in a folder of text files."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, pattern=r"\S", description="What to look for.")
    top_k: int = Field(default=3, ge=1, le=20, description="How many passages to return.")
    folder: str | None = Field(
        default=None,
        description="A directory of .txt and .md files to search instead of the corpus.",
    )


@dataclass(frozen=True, slots=True)
class Passage:
    """A paragraph of a document, with the counts of its terms."""

    source: str
    text: str
    terms: Counter[str]


@agent("researcher", description="Ranks the passages of a text corpus for a query (BM25).")
def researcher(ctx: Context, input: ResearcherInput) -> dict[str, Any]:
    """Rank every passage of the corpus for ``input.query`` and summarise the best one.

    Raises:
        ValueError: the query has no searchable word, or the folder holds no documents.
        FileNotFoundError: ``folder`` is not a directory.
        RuntimeError: the task was cancelled.
    """
    query_terms = set(tokenize(input.query))
    if not query_terms:
        raise ValueError(f"the query {input.query!r} has no word to search for")
    files = document_files(input.folder)

    documents: list[list[Passage]] = []
    for number, file in enumerate(files, start=1):
        _stop_if_cancelled(ctx)
        text = file.read_bytes().decode("utf-8", errors="replace")
        documents.append(split_passages(file.name, text))
        ctx.progress(0.5 * number / len(files), f"Indexing {number} of {len(files)} documents...")

    index = Bm25([passage.terms for document in documents for passage in document])
    scored: list[tuple[float, Passage]] = []
    for number, document in enumerate(documents, start=1):
        _stop_if_cancelled(ctx)
        scored.extend((index.score(query_terms, passage.terms), passage) for passage in document)
        if document:
            ctx.charge(
                len(document) * PRICE_PER_PASSAGE,
                description=f"scored {len(document)} passages of {document[0].source}",
            )
        ctx.progress(
            0.5 + 0.5 * number / len(files), f"Scoring {number} of {len(files)} documents..."
        )

    matching = [item for item in scored if item[0] > 0]
    # sorted() is stable, so equal scores keep the documents' (alphabetical) order
    best = sorted(matching, key=lambda item: -item[0])[: input.top_k]
    return {
        "query": input.query,
        "results": [
            {"source": passage.source, "passage": passage.text, "score": round(score, 4)}
            for score, passage in best
        ],
        "summary": summarise(best[0][1] if best else None, query_terms),
    }


class Bm25:
    """Okapi BM25 over a fixed collection of passages, each given as its term counts."""

    def __init__(self, passages: Sequence[Counter[str]], k1: float = K1, b: float = B) -> None:
        self.k1 = k1
        self.b = b
        self.size = len(passages)
        self.average_length = sum(p.total() for p in passages) / max(self.size, 1)
        # in how many passages each term occurs (a Counter's keys are unique)
        self.document_frequency = Counter(term for passage in passages for term in passage)

    def idf(self, term: str) -> float:
        """How rare ``term`` is: near 0 when every passage has it, larger the rarer it is."""
        frequency = self.document_frequency[term]
        return math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5))

    def score(self, query_terms: Iterable[str], passage: Counter[str]) -> float:
        """The passage's relevance to the query; 0 when it shares no term with it."""
        length_factor = 1 - self.b + self.b * passage.total() / (self.average_length or 1)
        score = 0.0
        for term in query_terms:
            frequency = passage[term]
            if frequency:
                saturation = frequency * (self.k1 + 1) / (frequency + self.k1 * length_factor)
                score += self.idf(term) * saturation
        return score


def tokenize(text: str) -> list[str]:
    """Lower-case words without the most common ones, plurals folded onto the singular."""
    return [_singular(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS]


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"  # queries -> query
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # webhooks -> webhook, but not status or analysis
    return word


def split_passages(source: str, text: str) -> list[Passage]:
    """The document's paragraphs (separated by blank lines), without markdown headings."""
    passages = []
    for block in _PARAGRAPH_BREAK.split(text):
        lines = (line.strip() for line in block.splitlines())
        paragraph = " ".join(line for line in lines if line and not line.startswith("#"))
        if paragraph:
            passages.append(Passage(source, paragraph, Counter(tokenize(paragraph))))
    return passages


def summarise(passage: Passage | None, query_terms: set[str]) -> str:
    """The passage's first few sentences that share a term with the query, in their order."""
    if passage is None:
        return "No passage matches the query."
    sentences = _SENTENCE_END.split(passage.text)
    relevant = [s for s in sentences if query_terms & set(tokenize(s))]
    return " ".join(relevant[:SUMMARY_SENTENCES])


def document_files(folder: str | None) -> list[Traversable]:
    """The .md and .txt files of ``folder``, or of the bundled corpus, sorted by name."""
    if folder is None:
        root: Traversable = resources.files("theazo.agents.examples").joinpath("corpus")
    else:
        root = Path.cwd() / folder
        if not root.is_dir():
            raise FileNotFoundError(
                f"no folder at {root}; a relative path is read from the task's working "
                "directory, so give an absolute path"
            )
    files = [f for f in root.iterdir() if f.is_file() and f.name.endswith(DOCUMENT_SUFFIXES)]
    if not files:
        raise ValueError(f"{root} holds no .md or .txt files to search")
    return sorted(files, key=lambda f: f.name)


def _stop_if_cancelled(ctx: Context) -> None:
    if ctx.cancelled:
        raise RuntimeError("the task was cancelled")
