// Container image names as workers match them. A task's image is stored normalised; a worker's
// host-image patterns (TESSERA_HOST_IMAGES: "python:*,node:*") take images whose name fits, with
// "*" for any text, and the lease statement matches the same patterns as SQL LIKE patterns.

/** An image's name as workers match it: Docker Hub's default registry and namespace left out. */
export function normalizeImage(image: string): string {
  return image.replace(/^docker\.io\//, '').replace(/^library\//, '');
}

/** Whether a host-image pattern (`python:*`, `node:20`, `*`) takes an image. */
export function imageMatches(pattern: string, image: string): boolean {
  const expression = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return expression.test(normalizeImage(image));
}

/** The SQL LIKE patterns of host-image patterns (what the lease statement compares a task's image with). */
export function likePatterns(patterns: string[]): string[] {
  return patterns.map((pattern) => pattern.replace(/[\\%_]/g, '\\$&').replace(/\*/g, '%'));
}
