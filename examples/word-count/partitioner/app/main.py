#!/usr/bin/env python3
"""word-count partitioner: split the input text into N chunks at word boundaries.

Environment (set by the platform):
  SOURCE_DIR          folder holding the fetched input file(s)
  CHUNKS_DIR          folder to write data_0.bin, data_1.bin, ... into
  PARTITIONER_PARAMS  JSON object; key "chunks" (int 1..10000, default 4)
"""
import json
import os
import re
import sys

DEFAULT_CHUNKS = 4
MIN_CHUNKS = 1
MAX_CHUNKS = 10000


def fail(message, code=2):
    print(f"word-count-partitioner: error: {message}", file=sys.stderr)
    sys.exit(code)


def require_env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail(f"required environment variable {name} is not set")
    return value


def read_params():
    raw = os.environ.get("PARTITIONER_PARAMS", "{}") or "{}"
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"PARTITIONER_PARAMS is not valid JSON ({exc}): {raw!r}")
    if not isinstance(params, dict):
        fail(f"PARTITIONER_PARAMS must be a JSON object, got {raw!r}")
    chunks = params.get("chunks", DEFAULT_CHUNKS)
    # bool is a subclass of int in Python; reject it explicitly.
    if isinstance(chunks, bool) or not isinstance(chunks, int) or not (MIN_CHUNKS <= chunks <= MAX_CHUNKS):
        fail(
            f"parameter 'chunks' must be an integer from {MIN_CHUNKS} to {MAX_CHUNKS}, "
            f"got {json.dumps(chunks)}"
        )
    return chunks


def read_source(source_dir):
    if not os.path.isdir(source_dir):
        fail(f"SOURCE_DIR {source_dir!r} is not a directory")
    parts = []
    for name in sorted(os.listdir(source_dir)):
        path = os.path.join(source_dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                parts.append(fh.read().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def split_text(text, n):
    """Split text into at most n pieces of roughly equal character length.

    Cuts are only made at whitespace, so no word is ever split. Every
    character of the input ends up in exactly one chunk. Returns at least
    one chunk (possibly empty) and never more chunks than words.
    """
    # Spans of the words (maximal runs of non-whitespace).
    words = [m.span() for m in re.finditer(r"\S+", text)]
    if not words:
        return [text]
    n = min(n, len(words))
    total = len(text)
    chunks = []
    start = 0  # character offset where the current chunk begins
    w = 0      # index of the first word not yet assigned to a chunk
    for k in range(1, n):
        target = total * k // n
        # Words left must still cover the remaining chunks (one word each).
        max_w = len(words) - (n - k)
        # Take at least one word, then keep taking words whose start is before target.
        end_w = w + 1
        while end_w < max_w and words[end_w][0] < target:
            end_w += 1
        # Cut at the start of the next word: the whitespace between belongs to this chunk.
        cut = words[end_w][0]
        chunks.append(text[start:cut])
        start = cut
        w = end_w
    chunks.append(text[start:])
    return chunks


def main():
    source_dir = require_env("SOURCE_DIR")
    chunks_dir = require_env("CHUNKS_DIR")
    n = read_params()
    text = read_source(source_dir)
    pieces = split_text(text, n)
    os.makedirs(chunks_dir, exist_ok=True)
    for i, piece in enumerate(pieces):
        with open(os.path.join(chunks_dir, f"data_{i}.bin"), "wb") as fh:
            fh.write(piece.encode("utf-8"))
    print(f"wrote {len(pieces)} chunk(s) from {len(text)} characters (requested {n})")


if __name__ == "__main__":
    main()
