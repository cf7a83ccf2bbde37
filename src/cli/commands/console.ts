import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { AgentConfigSchema } from '../../agent/config.js';
import { resolveSettings } from '../../config/resolve.js';
import { readToken } from '../../api/token.js';
import { parseListen } from '../../api/listen.js';
import { InputError, UsageError, fromSystemError, shown } from '../errors.js';
import { opt } from '../options.js';
import { defaultTokenFile } from './run.js';

interface ConsoleFlags {
  config?: string;
  db?: string;
  listen?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('console-url')
    .description('print the web console\'s URL with the API token (in the fragment: never sent to the server, kept by the page for this tab)')
    .addOption(opt('-c, --config <file>', 'YAML config: its api.listen, api.token_file and db (default $VIGIL_CONFIG, else /etc/vigil/vigil.yaml when it exists)', 'file'))
    .addOption(opt('--db <file>', 'the store vigil run uses (the token file is next to it unless api.token_file says otherwise)', 'database'))
    .addOption(opt('--listen <addr:port>', 'the address vigil run listens on (default: api.listen)', 'listen'))
    .option('--json', 'one JSON object: {url, api, token_file}')
    .addHelpText(
      'after',
      `
The URL holds the token: treat it like the token file (0600, root). Open it in a
browser on this host (or through an SSH tunnel: ssh -L 7070:127.0.0.1:7070 host).

Examples:
  vigil run --listen 127.0.0.1:7070 &  vigil console-url --listen 127.0.0.1:7070
  curl -H "Authorization: Bearer $(cat /var/lib/vigil/api.token)" http://127.0.0.1:7070/api/status`,
    )
    .action((flags: ConsoleFlags) => {
      const { config, source } = resolveSettings(
        { configFlag: flags.config, flags: [{ key: 'db', value: flags.db, flag: '--db' }, { key: 'api.listen', value: flags.listen, flag: '--listen' }] },
        AgentConfigSchema,
      );
      const listen = config.api.listen;
      if (!listen) throw new UsageError('--listen', 'the API is off (api.listen is not set): give the address vigil run listens on', { code: 'usage.missing_argument' });
      const addr = parseListen(listen);
      if (typeof addr === 'string') throw new UsageError(source('api.listen'), `${shown(listen)}: ${addr}`);
      const file = config.api.token_file ?? defaultTokenFile(config.db);
      if (!existsSync(file)) throw new InputError('input.not_found', `token file ${shown(file, 200)}`, 'no token file there', { hint: '`vigil run --listen ...` makes it when it starts' });
      let token: string;
      try {
        token = readToken(file);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw fromSystemError(err, `token file ${shown(file, 200)}`) ?? new InputError('input.invalid', `token file ${shown(file, 200)}`, err.message);
      }
      const host = addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host === '::' ? '[::1]' : addr.host.includes(':') ? `[${addr.host}]` : addr.host;
      const api = `http://${host}:${addr.port}`;
      const url = `${api}/#token=${token}`;
      process.stdout.write(flags.json ? `${JSON.stringify({ url, api, token_file: file })}\n` : `${url}\n`);
    });
}
