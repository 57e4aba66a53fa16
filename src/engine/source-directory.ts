// A data source's listing as ByteNite's directory model, {name, path, files[], directories[]}:
// what its SDK parses from POST /datasource/test. Object keys are split on "/" into folders; each
// file keeps Tessera's size beside its name and path.

export interface ListedSourceFile {
  name: string;
  path: string;
  /** int64 as a string, as in ByteNite's API. */
  size: string;
}

export interface SourceDirectory {
  name: string;
  path: string;
  files: ListedSourceFile[];
  directories: SourceDirectory[];
}

/**
 * The directory at `root` (a bucket prefix, or "" for a single URL or result) holding `files`,
 * whose paths are under it; folders in between become nested directories, in the order met.
 */
export function sourceDirectory(root: string, files: ListedSourceFile[]): SourceDirectory {
  // A root that names one object (a bucket source's params.name may) lists the folder holding it.
  const named = root.replace(/\/+$/, '');
  const trimmed = files.some((file) => file.path === named) ? named.split('/').slice(0, -1).join('/') : named;
  const top: SourceDirectory = { name: trimmed.split('/').pop() ?? '', path: trimmed, files: [], directories: [] };
  for (const file of files) {
    const relative = trimmed && file.path.startsWith(`${trimmed}/`) ? file.path.slice(trimmed.length + 1) : file.path;
    const folders = relative.split('/').slice(0, -1).filter(Boolean);
    let directory = top;
    for (const folder of folders) {
      const path = directory.path ? `${directory.path}/${folder}` : folder;
      let next = directory.directories.find((candidate) => candidate.name === folder);
      if (!next) {
        next = { name: folder, path, files: [], directories: [] };
        directory.directories.push(next);
      }
      directory = next;
    }
    directory.files.push(file);
  }
  return top;
}
