#!/usr/bin/env python3
"""word-count app: count the words of one chunk.

Environment (set by the platform):
  TASK_DIR          folder holding this task's chunk as data.bin
  TASK_RESULTS_DIR  folder to write counts.json into
  APP_PARAMS        JSON object (no keys used; unknown keys are ignored)
  CHUNK_NUMBER      optional; index of this chunk, used in the summary line
"""
import json
import os
import re
import sys
from collections import Counter

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def fail(message, code=2):
    print(f"word-count: error: {message}", file=sys.stderr)
    sys.exit(code)


def require_env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail(f"required environment variable {name} is not set")
    return value


def read_params():
    raw = os.environ.get("APP_PARAMS", "{}") or "{}"
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"APP_PARAMS is not valid JSON ({exc}): {raw!r}")
    if not isinstance(params, dict):
        fail(f"APP_PARAMS must be a JSON object, got {raw!r}")
    return params


def count_words(text):
    return Counter(WORD_RE.findall(text.lower()))


def main():
    task_dir = require_env("TASK_DIR")
    results_dir = require_env("TASK_RESULTS_DIR")
    read_params()  # validated; no keys are used
    chunk = os.environ.get("CHUNK_NUMBER", "?") or "?"

    with open(os.path.join(task_dir, "data.bin"), "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace")
    counts = count_words(text)

    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "counts.json"), "w", encoding="utf-8") as fh:
        json.dump(dict(counts), fh, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    print(f"chunk {chunk}: {sum(counts.values())} words, {len(counts)} distinct")


if __name__ == "__main__":
    main()
