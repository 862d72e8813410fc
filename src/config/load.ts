import { readFile } from 'node:fs/promises';
import { parseDocument, type YAMLError } from 'yaml';
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
  const raw = parseSafeYaml(text, file);
  const { raw: overridden, applied } = applyEnvOverrides(raw, options.env ?? process.env);
  // (Empty with TEXTSTREAM_ overrides is fine: the environment may hold the whole definition.)
  if (overridden === null || overridden === undefined) throw new ConfigError(file, 'the file is empty; a pipeline needs at least name and source');
  return parsePipeline(overridden, file, applied);
}

/**
 * YAML as plain data: mappings, lists, strings, numbers, booleans and null. Tags that would
 * make other values (`!!js/function`, `!!binary`, `!!set`, an application's `!foo`) are
 * refused instead of being read as strings with a warning, which is what the yaml
 * package does by default; the core schema's own tags (`!!str`, `!!int`, …) still work.
 * Aliases are limited by the parser (maxAliasCount 100), so a "billion laughs" file fails.
 */
function parseSafeYaml(text: string, file: string): unknown {
  // resolveKnownTags false: YAML 1.1 tags such as !!binary and !!timestamp are not resolved either.
  const doc = parseDocument(text, { schema: 'core', resolveKnownTags: false, uniqueKeys: true });
  const [error] = doc.errors;
  if (error) throw new ConfigError(file, `not valid YAML${yamlPosition(error)}: ${yamlReason(error)}`, { cause: error });
  const tag = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (tag) {
    const written = text.slice(tag.pos[0], tag.pos[1]).trim() || yamlReason(tag);
    throw new ConfigError(
      file,
      `YAML tag ${written}${yamlPosition(tag)} is not accepted: pipeline files hold plain values (mappings, lists, strings, numbers, booleans, null)`,
      { cause: tag },
    );
  }
  try {
    return doc.toJS();
  } catch (cause) {
    // toJS throws for too many aliases (an exponential "billion laughs" document).
    throw new ConfigError(file, `not valid YAML: ${(cause as Error).message}`, { cause });
  }
}

function yamlPosition(error: YAMLError): string {
  const at = error.linePos?.[0];
  return at ? ` at line ${at.line}, column ${at.col}` : '';
}

/** The parser's first line ends with its own " at line L, column C:" (a code frame follows). */
function yamlReason(error: YAMLError): string {
  return error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
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

/**
 * Secrets are read by reference only (see KafkaSaslSchema): a literal one in the file is
 * refused with the way to give it instead of a bare "unknown field".
 */
const LITERAL_SECRETS: ReadonlyMap<string, string> = new Map([
  ['source.sasl.password', 'name the environment variable that holds it (passwordEnv) or the file (passwordFile)'],
  ['source.tls.keyPassword', 'name the environment variable that holds it (keyPasswordEnv) or the file (keyPasswordFile)'],
  ['source.tls.passphrase', 'name the environment variable that holds it (keyPasswordEnv) or the file (keyPasswordFile)'],
]);

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const secret = LITERAL_SECRETS.get(formatPath([...issue.path, issue.keys[0]!]));
    if (secret) return `a password is not accepted in the pipeline; ${secret}, so files, \`config show\` and logs never hold it`;
    return 'unknown field (check its spelling and nesting)';
  }
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
