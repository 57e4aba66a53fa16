// The server's hints name HTTP routes, which is right for an API caller; a CLI user is told the
// `tessera` command that does the same. Hints with no command of their own are left as they are.

const CLI_HINTS: [RegExp, string][] = [
  [/GET \/v1\/customer\/jobs\/templates lists the templates|GET \/v1\/dev\/templates lists them/, '`tessera template list` lists the templates'],
  [/list your jobs with GET \/v1\/customer\/jobs$/, 'list your jobs with `tessera job list`'],
  [/\(GET \/v1\/customer\/jobs lists them\)/, '(`tessera job list` lists them)'],
  [/GET \/v1\/auth\/user/, '`tessera whoami`'],
  [/^PUT the file to the job's dataSource\.params\.tempUrl, then PATCH \/v1\/customer\/jobs\/\{jobId\}\/uploadcompleted, then run$/, 'give the file with --file: `tessera job run --template ID --file PATH` uploads it and runs the job'],
  [/^get a new one with POST \/v1\/auth\/access_token .*$/, 'pass an API key with --key or TESSERA_API_KEY (`tessera key create` makes one)'],
  [/^send a key made by `tessera up` or `tessera key create` in the Authorization header$/, 'use the key `tessera up` printed, or make one with `tessera key create`; `tessera whoami` shows whose a key is'],
];

/** The server's hint as the CLI says it. */
export function cliHint(hint: string | undefined): string | undefined {
  if (hint === undefined) return undefined;
  return CLI_HINTS.reduce((text, [route, command]) => text.replace(route, command), hint);
}
