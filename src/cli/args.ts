// Argument parsing shared by the subcommands: node's parseArgs (strict), and one error type that main.ts turns
// into a one-line message plus the usage, exit code 2.

import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string, readonly usage: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed option values: strings for string options, booleans for boolean ones, plus --help. */
export type Values<O extends Options> = { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : string } & { help?: boolean };

export function parse<O extends Options>(argv: string[], options: O, usage: string, positionals = false): { values: Values<O>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: positionals });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0], usage);
  }
}

/** A positive integer option value, or a usage error naming the flag. */
export function intArg(v: string | undefined, flag: string, usage: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} expects an integer >= ${min}, got '${v}'`, usage);
  return n;
}

export function oneOf<T extends string>(v: string | undefined, flag: string, allowed: readonly T[], usage: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${v}'`, usage);
  return v as T;
}

/** "3x224x224" or "224" (square, 3 channels) -> [C, H, W]. */
export function parseInputShape(v: string, flag: string, usage: string): [number, number, number] {
  const parts = v.split('x').map(Number);
  if (parts.length === 1 && Number.isInteger(parts[0]) && parts[0] > 0) return [3, parts[0], parts[0]];
  if (parts.length === 3 && parts.every((p) => Number.isInteger(p) && p > 0)) return parts as [number, number, number];
  throw new UsageError(`${flag} expects CxHxW (e.g. 3x224x224) or a size, got '${v}'`, usage);
}
