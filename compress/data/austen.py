"""Sentences of Jane Austen's six novels, labelled by novel: real, offline text classification.

The text comes from Debian's ``r-cran-janeaustenr``, unpacked without R by
``scripts/install-austen.sh``. That package keeps the novels in R's lazy-load database
(``data/Rdata.rdb`` + ``data/Rdata.rdx``), which the ``rdata`` package cannot open by itself, so
``_read_lazyload`` does the small part R does: the ``.rdx`` is an ordinary RDS file holding, for
each object, an (offset, length) into the ``.rdb``; there each object is a 4-byte big-endian
length followed by a zlib stream of an XDR serialization, which ``rdata`` parses.

Torch-free: numpy is the only array library, and ``rdata`` is imported only when data is read.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np

from compress.errors import DataError

ENV_DIR = "COMPRESS_AUSTEN_DIR"
_DEFAULT_DIRS = (
    Path("/opt/edge-compress-data/janeaustenr/usr/lib/R/site-library/janeaustenr"),
    Path("/usr/lib/R/site-library/janeaustenr"),
)

# (object name in the lazy-load database, title); publication order, as janeaustenr lists them.
NOVELS = (
    ("sensesensibility", "Sense & Sensibility"),
    ("prideprejudice", "Pride & Prejudice"),
    ("mansfieldpark", "Mansfield Park"),
    ("emma", "Emma"),
    ("northangerabbey", "Northanger Abbey"),
    ("persuasion", "Persuasion"),
)
CLASSES = [title for _, title in NOVELS]

_INSTALL_HINT = f"run `make data` or `bash scripts/install-austen.sh`, or set {ENV_DIR}"


def _search_dirs() -> tuple[Path, ...]:
    """Read the environment at call time, so a test or a user can point elsewhere after import."""
    env = os.environ.get(ENV_DIR)
    return ((Path(env),) if env else ()) + _DEFAULT_DIRS


AUSTEN_DIRS: tuple[Path, ...] = _search_dirs()
"""The folders searched, in order (snapshot at import; lookups re-read COMPRESS_AUSTEN_DIR)."""


def _db_files(folder: Path) -> tuple[Path, Path]:
    return folder / "data" / "Rdata.rdb", folder / "data" / "Rdata.rdx"


def find_austen_dir() -> Path | None:
    """The first searched folder that holds the janeaustenr lazy-load database, or None."""
    for folder in _search_dirs():
        if all(f.is_file() for f in _db_files(folder)):
            return folder
    return None


def austen_missing() -> str | None:
    """None when the novels are installed, else one line saying where we looked and what to do."""
    if find_austen_dir() is not None:
        return None
    looked = ", ".join(str(d) for d in _search_dirs())
    return f"janeaustenr data (data/Rdata.rdb, .rdx) not found in {looked}; {_INSTALL_HINT}"


def _rdata():  # noqa: ANN202  (module type)
    try:
        import rdata
    except ImportError as exc:
        raise DataError(
            "reading the Austen novels needs the `rdata` package: "
            "pip install 'edge-compress[train]' (or pip install rdata)"
        ) from exc
    return rdata


def _read_index(rdx: Path) -> dict[str, tuple[int, int]]:
    """Object name -> (offset, length) in the .rdb, from the .rdx (a gzip-compressed RDS)."""
    rdata = _rdata()
    try:
        index = rdata.read_rds(rdx)
        return {str(k): (int(v[0]), int(v[1])) for k, v in index["variables"].items()}
    except Exception as exc:  # rdata raises many types on bad input
        raise DataError(f"{rdx}: not a readable R lazy-load index ({exc})") from exc


def _read_object(rdb: Path, data: bytes, name: str, where: tuple[int, int]) -> list[str]:
    """One character vector from the .rdb: 4-byte length, zlib stream, XDR serialization."""
    rdata = _rdata()
    offset, length = where
    blob = data[offset : offset + length]
    try:
        raw = zlib.decompress(blob[4:])
        if len(raw) != int.from_bytes(blob[:4], "big"):
            raise ValueError("length header does not match the decompressed size")
        value = rdata.conversion.convert(rdata.parser.parse_data(raw, extension=".rds"))
        return [str(line) for line in value]
    except Exception as exc:
        raise DataError(f"{rdb}: object {name!r} is unreadable ({exc})") from exc


_CACHE: dict[tuple, dict[str, tuple[str, ...]]] = {}


def _read_novels(folder: Path) -> dict[str, tuple[str, ...]]:
    """``_read_lazyload``, memoised on the files' identity: parsing takes about a second, and
    callers (tests, several recipes in one run) often ask twice."""
    key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in _db_files(folder))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = {k: tuple(v) for k, v in _read_lazyload(folder).items()}
    return _CACHE[key]


def _read_lazyload(folder: Path) -> dict[str, list[str]]:
    """Every novel's lines, keyed by object name."""
    rdb, rdx = _db_files(folder)
    index = _read_index(rdx)
    absent = [name for name, _ in NOVELS if name not in index]
    if absent:
        raise DataError(f"{rdx}: no object named {', '.join(absent)}")
    try:
        data = rdb.read_bytes()
    except OSError as exc:
        raise DataError(f"{rdb}: cannot read ({exc})") from exc
    return {name: _read_object(rdb, data, name, index[name]) for name, _ in NOVELS}


_HEADING = re.compile(r"(?i)^(chapter|volume)\s+[0-9ivxlc]+\.?$")
_END = re.compile(r"(?i)^(the end|finis|a note on the text)$")


def _paragraphs(lines: tuple[str, ...]) -> list[str]:
    """Blank-line separated paragraphs, each joined into one whitespace-normalised line."""
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(" ".join(current).split()))
            current = []
    return paragraphs


def _body(paragraphs: list[str]) -> list[str]:
    """The novel's prose: after the first chapter heading (skipping title pages and prefaces),
    before an end marker (skipping an editor's note), without headings or all-caps lines."""
    start = next((i for i, p in enumerate(paragraphs) if _HEADING.match(p)), 0)
    body = []
    for para in paragraphs[start:]:
        if _END.match(para):
            break
        if _HEADING.match(para) or not any(c.islower() for c in para):
            continue
        body.append(para.replace("_", ""))  # drop the _emphasis_ marks
    return body


# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, then
# an opening quote/bracket or a capital. The word before the period vetoes abbreviations.
_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*(?=\s+[\"'(\[]?[A-Z])")
# Titles only: "No." and "sir." end sentences in dialogue far more often than they abbreviate.
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "col", "capt", "gen", "esq", "rev"})


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period ending at ``end`` closes an abbreviation or an initial ("Mr.", "F.")."""
    if text[end] != ".":
        return False
    word = re.search(r"(\w+)$", text[:end])
    if word is None:
        return False
    token = word.group(1)
    initial = len(token) == 1 and token.isupper() and token != "I"  # "It was I." ends one
    return token.lower() in _ABBREVIATIONS or initial


def split_sentences(paragraph: str) -> list[str]:
    """Split at ., ! or ? before a capital: simple rules that suit edited 19th-century prose."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(paragraph):
        if _is_abbreviation(paragraph, match.start()):
            continue
        sentences.append(paragraph[start : match.end()].strip())
        start = match.end()
    sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def austen_sentences(
    min_words: int = 6, max_words: int = 60
) -> tuple[list[str], np.ndarray, list[str]]:
    """(sentences, int64 labels indexing the class names, the six titles in CLASSES order).

    Sentences keep their novel's order, novels come in CLASSES order, and sentences outside
    [min_words, max_words] whitespace-separated words are dropped: the result is deterministic.
    """
    folder = find_austen_dir()
    if folder is None:
        raise DataError(austen_missing() or "janeaustenr data not found")
    novels = _read_novels(folder)
    texts: list[str] = []
    labels: list[int] = []
    for label, (name, _) in enumerate(NOVELS):
        for paragraph in _body(_paragraphs(novels[name])):
            for sentence in split_sentences(paragraph):
                if min_words <= len(sentence.split()) <= max_words:
                    texts.append(sentence)
                    labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64), list(CLASSES)
