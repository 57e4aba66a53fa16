import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { packFolder, unpackArchive } from '../blobs/archive.js';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import type { ClientOptions } from './client.js';
import { createClient } from './client.js';
import { SCAFFOLDS } from './scaffolds.js';

// `tessera app|engine new|push|pull|get|list|activate|deactivate|status` and
// `tessera template new|push|get|list`: ByteNite's registry verbs over /v1/dev.

type Options = ClientOptions & { json?: boolean };

/** What `pull` may unpack: the same bounds the server applies to a push. */
const PULL_LIMITS = { maxBytes: 256 * 1024 ** 2, maxEntries: 20_000 };

function out(options: Options, value: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function describe(component: any): string {
  return `${component.name}@${component.version}  ${component.type.padEnd(11)} ${component.status.padEnd(8)} ${component.builtin ? 'built-in ' : ''}${component.description ? ` ${component.description}` : ''}`;
}

const withClient = (command: Command) =>
  command
    .option('--server <url>', 'Tessera server (TESSERA_URL, default http://127.0.0.1:8080)')
    .option('--key <key>', 'API key or access token (TESSERA_API_KEY)')
    .option('--json', 'print machine-readable JSON');

async function writeScaffold(folder: string, files: Record<string, string>): Promise<void> {
  if (existsSync(folder) && readdirSync(folder).length > 0) throw invalidArgument('folder', `${quote(folder)} already exists and is not empty`, 'choose a new folder name');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(folder, name)), { recursive: true });
    await writeFile(path.join(folder, name), content, { mode: name.endsWith('.py') ? 0o755 : 0o644 });
  }
}

function registerComponentCommands(program: Command, group: 'apps' | 'engines'): void {
  const noun = group === 'apps' ? 'app' : 'engine';
  const command = program.command(noun).description(group === 'apps' ? 'apps: the code each task runs' : 'partitioning and assembling engines');
  const route = (tag: string, action = '') => `/v1/dev/${group}/${encodeURIComponent(tag)}${action}`;

  const create = command.command('new').argument('<name>', 'letters, digits, "-" and "_"').argument('[folder]', 'where (default: ./<name>)').description(`scaffold a working python3 ${noun} folder`);
  if (group === 'engines') create.option('--type <type>', 'partitioner or assembler', 'partitioner');
  create.option('--json', 'print machine-readable JSON').action(async (name: string, folder: string | undefined, options: { type?: string; json?: boolean }) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw invalidArgument('name', `name ${quote(name)} must be 1-64 letters, digits, "-" or "_"`);
    const kind = group === 'apps' ? 'app' : options.type;
    if (kind !== 'app' && kind !== 'partitioner' && kind !== 'assembler') throw invalidArgument('type', `--type ${quote(options.type)} must be partitioner or assembler`);
    const target = path.resolve(folder ?? name);
    await writeScaffold(target, SCAFFOLDS[kind](name));
    out(options, { folder: target, name, type: kind }, `created ${kind} ${name} in ${target}\n  try it: tessera ${noun} push ${path.relative(process.cwd(), target) || '.'}`);
  });

  withClient(command.command('push').argument('[folder]', 'the folder holding manifest.json and app/', '.').description(`push a ${noun} (a new version, or replace that version)`)).action(async (folder: string, options: Options) => {
    if (!existsSync(path.join(folder, 'manifest.json'))) throw invalidArgument('folder', `${quote(folder)} has no manifest.json`, `run it on a ${noun} folder (tessera ${noun} new NAME makes one)`);
    const archive = await packFolder(folder);
    const { data } = await createClient(options).call('POST', `/v1/dev/${group}`, { data: archive.toString('base64') });
    const template = existsSync(path.join(folder, 'template.json')) ? ' (and its template.json)' : '';
    out(options, data, `pushed ${data.type} ${data.name}@${data.version}${template}, ${archive.length} bytes, sha256 ${data.archive.sha256.slice(0, 12)}…`);
  });

  withClient(command.command('pull').argument('<tag>', 'name, name@M or name@M.m').argument('[folder]', 'where to unpack (default: ./<name>)').description(`download a ${noun}'s folder`)).action(async (tag: string, folder: string | undefined, options: Options) => {
    const answer = await createClient(options).call('GET', route(tag, '/download'));
    const target = path.resolve(folder ?? answer.name);
    if (existsSync(target) && readdirSync(target).length > 0) throw invalidArgument('folder', `${quote(target)} already exists and is not empty`, 'give an empty or new folder');
    await unpackArchive(Buffer.from(answer.data, 'base64'), target, PULL_LIMITS);
    out(options, { folder: target, name: answer.name, version: answer.version }, `pulled ${answer.name}@${answer.version} into ${target}`);
  });

  withClient(command.command('get').argument('<tag>').description(`show a ${noun}`)).action(async (tag: string, options: Options) => {
    const { data } = await createClient(options).call('GET', route(tag));
    out(options, data, `${describe(data)}\n  entrypoint: ${data.entrypoint}\n  archive: ${data.archive.size} bytes, sha256 ${data.archive.sha256}\n  updated: ${data.updatedAt}`);
  });

  withClient(command.command('list').description(`your ${group} and the built-ins, every version`)).action(async (options: Options) => {
    const { data } = await createClient(options).call('GET', `/v1/dev/${group}`);
    out(options, data, data.map(describe).join('\n') || `no ${group}`);
  });

  for (const verb of ['activate', 'deactivate'] as const) {
    withClient(command.command(verb).argument('<tag>').description(verb === 'activate' ? `let jobs use a version of a ${noun} again` : `stop jobs from resolving to a version of a ${noun}`)).action(async (tag: string, options: Options) => {
      const { data } = await createClient(options).call('POST', route(tag, `/${verb}`));
      out(options, data, `${data.name}@${data.version} is ${data.status}`);
    });
  }

  withClient(command.command('status').argument('<tag>').description(`whether a version of a ${noun} is active`)).action(async (tag: string, options: Options) => {
    const answer = await createClient(options).call('GET', route(tag, '/status'));
    out(options, answer, `${answer.tag} is ${answer.status}`);
  });
}

function registerTemplateCommands(program: Command): void {
  const command = program.command('template').description('templates: an app, a partitioner and an assembler, with job defaults');

  command
    .command('new')
    .argument('<id>', 'template id')
    .argument('[file]', 'where (default: ./<id>.template.json)')
    .option('--app <tag>', 'app tag', 'my-app')
    .option('--partitioner <tag>', 'partitioner tag', 'passthrough')
    .option('--assembler <tag>', 'assembler tag', 'passthrough')
    .option('--json', 'print machine-readable JSON')
    .description('write a template.json to edit and push')
    .action(async (id: string, file: string | undefined, options: { app: string; partitioner: string; assembler: string; json?: boolean }) => {
      const target = path.resolve(file ?? `${id}.template.json`);
      if (existsSync(target)) throw invalidArgument('file', `${quote(target)} already exists`, 'choose another file name');
      const template = { id, description: '', app: options.app, partitioner: options.partitioner, assembler: options.assembler, params: { partitioner: {}, app: {}, assembler: {} }, config: { taskTimeout: 300, maxTaskRetries: 2 } };
      await writeFile(target, `${JSON.stringify(template, null, 2)}\n`);
      out(options, { file: target, template }, `wrote ${target}\n  push it with: tessera template push ${path.relative(process.cwd(), target)}`);
    });

  withClient(command.command('push').argument('<file>', 'a template.json').description('create or replace a template')).action(async (file: string, options: Options) => {
    let template: unknown;
    try {
      template = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new TesseraError('INVALID_ARGUMENT', `${quote(file)} is not a readable JSON file: ${(error as Error).message}`);
    }
    const { data } = await createClient(options).call('POST', '/v1/dev/templates', template);
    out(options, data, `pushed template ${data.id} (app ${data.app}, partitioner ${data.partitioner}, assembler ${data.assembler})`);
  });

  withClient(command.command('get').argument('<id>').description('show a template')).action(async (id: string, options: Options) => {
    const { data } = await createClient(options).call('GET', `/v1/dev/templates/${encodeURIComponent(id)}`);
    out(options, data, JSON.stringify(data, null, 2));
  });

  withClient(command.command('list').description('your templates and the built-ins')).action(async (options: Options) => {
    const { data } = await createClient(options).call('GET', '/v1/dev/templates');
    out(options, data, data.map((template: any) => `${template.id.padEnd(24)} app ${template.app}, partitioner ${template.partitioner}, assembler ${template.assembler}${template.owner === 'tessera' ? '  (built-in)' : ''}`).join('\n') || 'no templates');
  });
}

export function registerRegistryCommands(program: Command): void {
  registerComponentCommands(program, 'apps');
  registerComponentCommands(program, 'engines');
  registerTemplateCommands(program);
}
