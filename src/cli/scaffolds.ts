// What `tessera app new` and `tessera engine new` write: small, working python3 folders that
// follow the engine contract (CONTRACT.md), meant to be edited.

const manifest = (name: string, type: string | undefined, description: string) =>
  `${JSON.stringify({ name, version: '1.0', description, ...(type ? { type } : {}), platform: 'docker', entrypoint: 'main.py', platform_config: { container: 'python:3.11' }, device_requirements: { min_cpu: 1, min_memory: 1 } }, null, 2)}\n`;

const APP = `"""A Tessera app: runs once per chunk.

TASK_DIR/data.bin is this task's chunk; write results (any files) into TASK_RESULTS_DIR.
APP_PARAMS holds the job's params.app as JSON. stdout and stderr become the task's logs.
"""
import json
import logging
import os

# One level word per line ("INFO chunk 0: …"): Tessera reads the level from it, and shows it once.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
chunk = int(os.environ.get("CHUNK_NUMBER", "0"))

with open(os.path.join(os.environ["TASK_DIR"], "data.bin"), "rb") as source:
    data = source.read()

text = data.decode("utf-8", errors="replace")
summary = {"chunk": chunk, "bytes": len(data), "lines": text.count("\\n"), "words": len(text.split())}
logging.info("chunk %d: %d words", chunk, summary["words"])

with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "summary.json"), "w") as result:
    json.dump(summary, result)
`;

const PARTITIONER = `"""A Tessera partitioning engine: splits the job's input into chunks, one task each.

Input files are in SOURCE_DIR; write CHUNKS_DIR/data_0.bin, data_1.bin, ...
PARTITIONER_PARAMS holds params.partitioner as JSON, e.g. {"chunks": 4}.
"""
import json
import os

params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{}")
count = max(1, int(params.get("chunks", 4)))

lines = []
for name in sorted(os.listdir(os.environ["SOURCE_DIR"])):
    with open(os.path.join(os.environ["SOURCE_DIR"], name), "rb") as source:
        lines.extend(source.read().splitlines(keepends=True))

size = max(1, -(-len(lines) // count))
pieces = [lines[start:start + size] for start in range(0, len(lines), size)] or [[]]
for index, piece in enumerate(pieces):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{index}.bin"), "wb") as chunk:
        chunk.write(b"".join(piece))
print(f"INFO {len(pieces)} chunks of up to {size} lines")
`;

const ASSEMBLER = `"""A Tessera assembling engine: merges every task's results into the job's output.

TASK_RESULTS_DIR holds every task's result files; write the output into OUTPUT_DIR.
ASSEMBLER_PARAMS holds params.assembler as JSON.
"""
import os

results = os.environ["TASK_RESULTS_DIR"]
with open(os.path.join(os.environ["OUTPUT_DIR"], "merged.txt"), "wb") as output:
    for name in sorted(os.listdir(results)):
        with open(os.path.join(results, name), "rb") as result:
            output.write(result.read())
            output.write(b"\\n")
print(f"INFO merged {len(os.listdir(results))} result files")
`;

export const SCAFFOLDS: Record<'app' | 'partitioner' | 'assembler', (name: string) => Record<string, string>> = {
  app: (name) => ({
    'manifest.json': manifest(name, undefined, `${name}: summarises each chunk`),
    'app/main.py': APP,
    // Pushed with the app, so "tessera job run --template <name>" works straight away.
    'template.json': `${JSON.stringify({ id: name, description: `${name} with the built-in passthrough engines`, app: name, partitioner: 'passthrough', assembler: 'passthrough', params: { app: {} } }, null, 2)}\n`,
  }),
  partitioner: (name) => ({ 'manifest.json': manifest(name, 'partitioner', `${name}: splits the input by lines`), 'app/main.py': PARTITIONER }),
  assembler: (name) => ({ 'manifest.json': manifest(name, 'assembler', `${name}: concatenates the results`), 'app/main.py': ASSEMBLER }),
};
