#!/usr/bin/env node
// resnet: the command line. One file per subcommand; this file only dispatches and turns errors into messages.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backendInfo } from '../backend/select.js';
import { packageRoot } from '../backend/native.js';
import { type Command, UsageError } from './args.js';
import { runCommand } from './run.js';
import { benchCommand } from './bench.js';
import { inspectCommand } from './inspect.js';
import { convertCommand } from './convert.js';
import { summaryCommand } from './summary.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { predictCommand } from './predict.js';
import { embedCommand } from './embed.js';

const commands: Command[] = [runCommand, benchCommand, inspectCommand, convertCommand, summaryCommand, predictCommand, embedCommand, trainCommand, evalCommand, exportCommand];

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const b = backendInfo();
  const lines = [`resnet-ts ${pkg.version} (node ${process.version})`,
    `backend: ${b.name} (${b.reason})${b.name === 'native' ? `, ${b.native.isa}, ${b.threads} thread(s)` : ''}`];
  if (!b.native.loaded) lines.push(`native addon: not loaded: ${b.native.error}`);
  return lines.join('\n');
}

function help(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [`Usage: resnet <command> [options]    (resnet <command> --help for its options)`, '', 'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), '', 'Options:', '  --help, -h     this help', '  --version, -v  version and the compute backend in use (and why)'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    console.log(help());
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    console.log(version());
    return 0;
  }
  const cmd = commands.find((c) => c.name === first);
  if (!cmd) {
    console.error(`resnet: unknown command '${first}'\n${help()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`resnet ${cmd.name}: ${e.message}\n${e.usage}`);
      return 2;
    }
    console.error(`resnet ${cmd.name}: ${(e as Error).message}`);
    if (process.env.RESNET_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
