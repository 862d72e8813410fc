import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { applyEnvOverrides } from './env.js';
import { PipelineSchema, type PipelineConfig } from './schema.js';

export interface LoadPipelineOptions {
  /** Where TEXTSTREAM_<SECTION>_<FIELD> overrides are read from (see ./env.ts). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads, applies the environment's overrides to, validates and freezes a pipeline
 * definition. Validation happens once, here; stages receive a typed, frozen config and
 * never re-check it. Errors name the file and the field path
 * (`pipelines/x.yaml: sink.rotateRows: Too small: expected number to be >0`), or the
 * variable for a value that came from the environment.
 */
export async function loadPipeline(file: string, options: LoadPipelineOptions = {}): Promise<Readonly<PipelineConfig>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(file, `cannot read pipeline file (${(cause as Error).message})`, { cause });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    const at = cause instanceof YAMLParseError ? cause.linePos?.[0] : undefined;
    // The parser's first line ends with its own " at line L, column C:" (a code frame follows).
    const reason = (cause as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(file, `not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${reason}`, { cause });
  }
  const { raw: overridden, applied } = applyEnvOverrides(raw, options.env ?? process.env);
  // (Empty with TEXTSTREAM_ overrides is fine: the environment may hold the whole definition.)
  if (overridden === null || overridden === undefined) throw new ConfigError(file, 'the file is empty; a pipeline needs at least name and source');
  return parsePipeline(overridden, file, applied);
}

/**
 * Validates an already-parsed definition; `origin` names it in error messages, and
 * `fromEnv` (dotted field path → variable) the variables that set fields.
 */
export function parsePipeline(
  raw: unknown,
  origin = 'pipeline',
  fromEnv: ReadonlyMap<string, string> = new Map(),
): Readonly<PipelineConfig> {
  const result = PipelineSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    // An unknown key is reported at its parent; point at the key itself instead.
    const path = formatPath(issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path);
    const variable = [...fromEnv].find(([field]) => path === field || path.startsWith(`${field}[`))?.[1];
    throw new ConfigError(`${variable ?? origin}: ${path}`, describeIssue(issue, raw), { cause: result.error });
  }
  return deepFreeze(result.data);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') return 'unknown field (check its spelling and nesting)';
  // zod says "expected object, received undefined" for a field that is simply not there.
  if (issue.code === 'invalid_type' && issue.path.length > 0 && !isPresent(raw, issue.path)) return `required field is missing (expected ${issue.expected})`;
  return issue.message;
}

function isPresent(raw: unknown, path: readonly PropertyKey[]): boolean {
  let node = raw;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return false;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node !== undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
