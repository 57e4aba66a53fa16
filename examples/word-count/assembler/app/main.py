#!/usr/bin/env python3
"""word-count assembler: sum the per-chunk counts into one counts.json.

Environment (set by the platform):
  TASK_RESULTS_DIR  folder holding every task's result (e.g. 0_counts.json, 1_counts.json)
  OUTPUT_DIR        folder to write counts.json (and optionally top.txt) into
  ASSEMBLER_PARAMS  JSON object; optional key "top" (int >= 1) also writes top.txt
"""
import json
import os
import sys
from collections import Counter


def fail(message, code=2):
    print(f"word-count-assembler: error: {message}", file=sys.stderr)
    sys.exit(code)


def require_env(name):
    value = os.environ.get(name)
    if value is None or value == "":
        fail(f"required environment variable {name} is not set")
    return value


def read_params():
    raw = os.environ.get("ASSEMBLER_PARAMS", "{}") or "{}"
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"ASSEMBLER_PARAMS is not valid JSON ({exc}): {raw!r}")
    if not isinstance(params, dict):
        fail(f"ASSEMBLER_PARAMS must be a JSON object, got {raw!r}")
    top = params.get("top")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        fail(f"parameter 'top' must be an integer >= 1, got {json.dumps(top)}")
    return top


def load_counts(path):
    """Read one result file; a malformed one is an error naming the file (exit 1)."""
    name = os.path.basename(path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"result file {name} is not valid JSON: {exc}", code=1)
    if not isinstance(data, dict):
        fail(f"result file {name} must hold a JSON object of word -> count", code=1)
    for word, count in data.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            fail(f"result file {name}: count for {word!r} is not a non-negative integer: {json.dumps(count)}", code=1)
    return data


def main():
    results_dir = require_env("TASK_RESULTS_DIR")
    output_dir = require_env("OUTPUT_DIR")
    top = read_params()

    if not os.path.isdir(results_dir):
        fail(f"TASK_RESULTS_DIR {results_dir!r} is not a directory")
    files = sorted(
        name for name in os.listdir(results_dir)
        if name.endswith(".json") and os.path.isfile(os.path.join(results_dir, name))
    )
    totals = Counter()
    for name in files:
        totals.update(load_counts(os.path.join(results_dir, name)))

    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "counts.json"), "w", encoding="utf-8") as fh:
        json.dump(dict(ordered), fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    if top is not None:
        with open(os.path.join(output_dir, "top.txt"), "w", encoding="utf-8") as fh:
            for word, count in ordered[:top]:
                fh.write(f"{word}\t{count}\n")
    print(f"merged {len(files)} result file(s): {sum(totals.values())} words, {len(totals)} distinct")


if __name__ == "__main__":
    main()
