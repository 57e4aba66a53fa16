// One rule for turning a name from outside (a URL, an object key, an upload header, an app's
// output) into a local file name: letters, digits, ".", "_" and "-" only, no leading dots, never
// empty. Callers pick the last segment; this never sees a "/".

export function plainFileName(segment: string, fallback = 'input', max = 200): string {
  return segment.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(0, max) || fallback;
}
