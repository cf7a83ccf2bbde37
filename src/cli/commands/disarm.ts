import type { Command } from 'commander';
import { DEFAULT_PIN_DIR, ExecGuard } from '../../enforcement/index.js';
import { needsKernel, opt } from '../options.js';

export function register(program: Command): void {
  needsKernel(program.command('disarm'))
    .description('remove the pinned exec guard: enforcement stops now (rules stay stored; `vigil deny apply` re-arms)')
    .addOption(opt('--pin-dir <dir>', 'bpffs directory of the exec guard', 'pin-dir', { default: DEFAULT_PIN_DIR }))
    .action((flags: { pinDir: string }) => {
      const removed = ExecGuard.disarm(flags.pinDir);
      if (!removed.length) process.stdout.write(`exec guard not armed (nothing pinned in ${flags.pinDir})\n`);
      else process.stdout.write(`exec guard disarmed: removed ${removed.length} pins from ${flags.pinDir}\n`);
    });
}
