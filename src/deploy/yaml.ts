// A YAML writer for manifests: plain data (objects, arrays, strings, numbers, booleans) in block
// style. Strings are written as JSON strings (valid YAML) unless plainly safe, so nothing a value
// holds (a colon, a #, "true", a number-like tag) is ever read back as something else.

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const PLAIN_STRING = /^[A-Za-z_/][A-Za-z0-9_./-]*$/;
const YAML_WORDS = /^(true|false|yes|no|on|off|null|y|n|~)$/i;

function scalar(value: unknown): string {
  if (typeof value === 'string') return PLAIN_STRING.test(value) && !YAML_WORDS.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  throw new Error(`cannot write ${typeof value} as YAML`);
}

function key(name: string): string {
  return PLAIN_KEY.test(name) && !YAML_WORDS.test(name) ? name : JSON.stringify(name);
}

function isEmpty(value: unknown): boolean {
  return (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
}

function block(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (typeof item !== 'object' || item === null || isEmpty(item)) return [`${indent}- ${isEmpty(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}`];
      const [first = '', ...rest] = block(item, `${indent}  `);
      return [`${indent}- ${first.trimStart()}`, ...rest];
    });
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).filter(([, entry]) => entry !== undefined).flatMap(([name, entry]) => {
      if (typeof entry !== 'object' || entry === null) return [`${indent}${key(name)}: ${scalar(entry)}`];
      if (isEmpty(entry)) return [`${indent}${key(name)}: ${Array.isArray(entry) ? '[]' : '{}'}`];
      return [`${indent}${key(name)}:`, ...block(entry, Array.isArray(entry) ? indent : `${indent}  `)];
    });
  }
  return [`${indent}${scalar(value)}`];
}

/** Documents separated by `---`, each preceded by its comment lines. */
export function toYamlDocuments(documents: Array<{ comment?: string[]; value: object }>): string {
  return documents.map(({ comment = [], value }) => ['---', ...comment.map((line) => `# ${line}`), ...block(value, '')].join('\n')).join('\n') + '\n';
}
