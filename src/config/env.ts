import { ConfigError } from '../errors.js';
import { describeJsonType, jsonTypesOf, listPipelineFields, type JsonSchema, type PipelineField } from './json-schema.js';

/**
 * Environment overrides for deployment: `TEXTSTREAM_<SECTION>_<FIELD>` sets one field of
 * the pipeline file (camelCase → UPPER_SNAKE, nested names joined by `_`, e.g.
 * TEXTSTREAM_SINK_DIR, TEXTSTREAM_SOURCE_COLUMNS_TEXT). Values are strings; each is read
 * as the type the schema has at that path: numbers, `true`/`false`, comma-separated
 * arrays, maps as JSON (`{"spam":1}`), `null` where null is allowed. The result is
 * validated with the rest of the file.
 */
export const ENV_PREFIX = 'TEXTSTREAM_';

/**
 * TEXTSTREAM_ variables that are not pipeline settings. Any other TEXTSTREAM_ variable
 * that names no field is an error: a misspelt override silently ignored would deploy the
 * file's value instead. Add a name here when a new non-config variable is introduced
 * (test/config/env.test.ts checks the repository for them).
 */
export const NON_CONFIG_ENV_VARIABLES: ReadonlySet<string> = new Set([
  'TEXTSTREAM_FUSED_LSTM_ADDON', // src/model/fused-lstm.ts: path of the native addon
  'TEXTSTREAM_NATIVE_MARCH', // scripts/build-native.sh: -march of the addon build
  'TEXTSTREAM_KAFKA_PORT', // scripts/kafka.sh: port of the local broker
  'TEXTSTREAM_KAFKA_SASL', // scripts/kafka.sh: 1 makes the local broker require SASL (and add a TLS listener)
  'TEXTSTREAM_REPORT_SCREENSHOT', // test/report: keep the report test's screenshot
  'TEXTSTREAM_TEST_SEED', // test/helpers/seed.ts: replay a test's random draws
]);

/** `['deadLetter', 'path']` → `TEXTSTREAM_DEAD_LETTER_PATH`. */
export function envVariableFor(path: readonly string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Every override variable and the field it sets, in schema order. */
export function listEnvVariables(fields: readonly PipelineField[] = listPipelineFields()): Map<string, PipelineField> {
  const byName = new Map<string, PipelineField>();
  for (const field of fields) {
    const name = envVariableFor(field.path);
    const clash = byName.get(name);
    // Two fields with one variable name would make an override ambiguous: a schema bug.
    if (clash) throw new Error(`${name} would set both ${clash.path.join('.')} and ${field.path.join('.')}`);
    byName.set(name, field);
  }
  return byName;
}

export interface AppliedOverrides {
  /** The definition with the overrides written in (a copy; the input is not changed). */
  raw: unknown;
  /** Dotted field path → the variable that set it, so validation errors can name it. */
  applied: Map<string, string>;
}

/**
 * Writes the TEXTSTREAM_ overrides found in `env` into a parsed (unvalidated) definition.
 * Throws ConfigError naming the variable for an unknown TEXTSTREAM_ variable and, with the
 * field path and expected type, for a value that cannot be read as that type.
 */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): AppliedOverrides {
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !NON_CONFIG_ENV_VARIABLES.has(name))
    .sort();
  const applied = new Map<string, string>();
  if (names.length === 0) return { raw, applied };
  const known = listEnvVariables();
  const overrides = names.map((name) => {
    const field = known.get(name);
    if (!field) throw new ConfigError(name, unknownVariableMessage(name, [...known.keys()]));
    return { name, field, value: coerce(env[name] ?? '', field.schema, name, field.path.join('.')) };
  });
  // A file that is not a mapping at all is reported by validation, as without overrides.
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) return { raw, applied };
  const result = structuredClone(raw ?? {});
  for (const { name, field, value } of overrides) {
    setPath(result, field.path, value, name);
    applied.set(field.path.join('.'), name);
  }
  return { raw: result, applied };
}

function unknownVariableMessage(name: string, known: string[]): string {
  const closest = known
    .map((k) => ({ k, d: editDistance(name, k) }))
    .sort((a, b) => a.d - b.d)[0];
  const hint = closest && closest.d <= 3 ? ` (did you mean ${closest.k}?)` : '';
  return `not a pipeline setting${hint}; overrides are ${ENV_PREFIX}<SECTION>_<FIELD>, listed in docs/configuration.md (\`textstream config reference\`)`;
}

function coerce(text: string, schema: JsonSchema, name: string, path: string): unknown {
  const types = jsonTypesOf(schema);
  const fail = (): never => {
    throw new ConfigError(name, `${path}: expected ${describeJsonType(schema)}, got ${JSON.stringify(text)}`);
  };
  if (text === 'null' && types.includes('null')) return null;
  if (types.includes('integer') || types.includes('number')) {
    // Number('') is 0 and Number('0x10') is 16: accept decimal notation only.
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim())) return fail();
    const n = Number(text);
    if (!types.includes('number') && !Number.isInteger(n)) return fail();
    return n;
  }
  if (types.includes('boolean')) {
    if (text === 'true') return true;
    if (text === 'false') return false;
    return fail();
  }
  if (types.includes('array')) return text.split(',').map((item) => item.trim());
  if (types.includes('object')) {
    // A map such as decode.labels: given as JSON, e.g. {"spam":1,"ham":0}.
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return fail();
    }
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : fail();
  }
  if (types.includes('string')) return text;
  return fail();
}

function setPath(root: unknown, path: readonly string[], value: unknown, name: string): void {
  let node = root as Record<string, unknown>;
  for (const [i, key] of path.slice(0, -1).entries()) {
    const next = node[key];
    if (next === undefined || next === null) {
      node = node[key] = {};
    } else if (typeof next === 'object' && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      throw new ConfigError(name, `${path.slice(0, i + 1).join('.')}: expected an object in the pipeline file, so ${path.join('.')} can be set`);
    }
  }
  node[path.at(-1)!] = value;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
