import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { PipelineSchema, type PipelineConfig } from './schema.js';

/**
 * Reads, validates and freezes a pipeline definition. Validation happens once, here;
 * stages receive a typed, frozen config and never re-check it. Errors name the file and
 * the field path (`pipelines/x.yaml: sink.rotateRows: Too small: expected number to be >0`).
 */
export async function loadPipeline(file: string): Promise<Readonly<PipelineConfig>> {
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
    const where = cause instanceof YAMLParseError && cause.linePos ? ` at line ${cause.linePos[0].line}` : '';
    throw new ConfigError(file, `not valid YAML${where}: ${(cause as Error).message.split('\n')[0]}`, { cause });
  }
  return parsePipeline(raw, file);
}

/** Validates an already-parsed definition; `origin` names it in error messages. */
export function parsePipeline(raw: unknown, origin = 'pipeline'): Readonly<PipelineConfig> {
  const result = PipelineSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    // An unknown key is reported at its parent; point at the key itself instead.
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    throw new ConfigError(`${origin}: ${formatPath(path)}`, describeIssue(issue), { cause: result.error });
  }
  return deepFreeze(result.data);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return 'unknown field (check its spelling and nesting)';
  return issue.message;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
