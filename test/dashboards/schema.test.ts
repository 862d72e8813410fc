/**
 * Every dashboard under dashboards/ against the `Dashboard` type of `@grafana/schema` (no
 * Grafana runs here). Two layers:
 * - compile time: textstream.json is imported as a JSON module and assigned to a
 *   `Widened<Dashboard>`, so `tsc` (npm test, CI) fails on a missing required field or a
 *   wrong field type in it;
 * - test time: each dashboards/*.json is pasted as an object literal into a virtual
 *   TypeScript file, `… satisfies JsonOf<Dashboard>`, and type-checked with the compiler
 *   API: literal unions (variable types, colour modes), enums and unknown fields count too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Dashboard } from '@grafana/schema';
import ts from 'typescript';
import textstreamDashboard from '../../dashboards/textstream.json' with { type: 'json' };
import { repoRoot } from '../helpers/paths.js';
import type { Widened } from './grafana-json.js';

// The compile-time check: this line is what fails `tsc` on a wrong field type.
const typedDashboard: Widened<Dashboard> = textstreamDashboard;

const dashboardsDir = path.join(repoRoot, 'dashboards');
const dashboardFiles = readdirSync(dashboardsDir).filter((f) => f.endsWith('.json'));

let compilerOptions: ts.CompilerOptions | undefined;
function options(): ts.CompilerOptions {
  if (!compilerOptions) {
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(repoRoot, 'tsconfig.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    });
    compilerOptions = { ...parsed!.options, noEmit: true, noUnusedLocals: false };
  }
  return compilerOptions;
}

/** Type errors of `<value> satisfies JsonOf<Dashboard>`, as "line: message" strings. */
function typeErrors(value: unknown): string[] {
  // Beside the real test sources, so '@grafana/schema' and './grafana-json.js' resolve.
  const file = path.join(repoRoot, 'test', 'dashboards', '__dashboard_check__.ts');
  const header = "import type { Dashboard } from '@grafana/schema';\nimport type { JsonOf } from './grafana-json.js';\n";
  const text = `${header}export const dashboard = ${JSON.stringify(value, null, 2)} satisfies JsonOf<Dashboard>;\n`;
  const host = ts.createCompilerHost(options());
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (f) => f === file || fileExists(f);
  host.readFile = (f) => (f === file ? text : readFile(f));
  host.getSourceFile = (f, languageVersion, ...rest) =>
    f === file ? ts.createSourceFile(f, text, languageVersion, true) : getSourceFile(f, languageVersion, ...rest);
  const program = ts.createProgram([file], options(), host);
  const source = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, source).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
    return `line ${line - 2} of the JSON: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

const readDashboard = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(dashboardsDir, file), 'utf8')) as Record<string, unknown>;

test('should have a typed textstream dashboard with a schema version Grafana 11 understands', () => {
  assert.ok(typedDashboard.schemaVersion >= 39, `schemaVersion ${typedDashboard.schemaVersion}`);
  assert.ok(dashboardFiles.includes('textstream.json'));
});

for (const file of dashboardFiles) {
  test(`should type-check dashboards/${file} against @grafana/schema's Dashboard`, () => {
    assert.deepEqual(typeErrors(readDashboard(file)), []);
  });
}

test('should reject a dashboard with a wrong field type, an unknown variable type or an unknown field', () => {
  const wrong = readDashboard('textstream.json');
  const panels = wrong.panels as Array<Record<string, unknown>>;
  panels[1]!.gridPos = { h: '8', w: 12, x: 0, y: 1 };
  const errors = typeErrors(wrong);
  assert.ok(errors.some((e) => /'string' is not assignable to type 'number'/.test(e)), errors.join('\n'));

  const badVariable = readDashboard('textstream.json');
  ((badVariable.templating as { list: Array<Record<string, unknown>> }).list[1]!).type = 'qeury';
  assert.notDeepEqual(typeErrors(badVariable), []);

  const unknownField = readDashboard('textstream.json');
  unknownField.schemaVersoin = 39;
  assert.notDeepEqual(typeErrors(unknownField), []);
});

test('should give every panel target a PromQL expression, a refId and the datasource variable', () => {
  for (const file of dashboardFiles) {
    const dashboard = readDashboard(file) as unknown as Dashboard;
    const variables = dashboard.templating?.list ?? [];
    const datasource = variables.find((v) => v.type === 'datasource');
    assert.equal(datasource?.query, 'prometheus', `${file}: a datasource variable of type prometheus`);
    for (const panel of (dashboard.panels ?? []).flatMap((p) => (p.type === 'row' ? [p, ...((p as { panels?: unknown[] }).panels ?? [])] : [p]))) {
      const p = panel as { title?: string; type: string; datasource?: { uid?: string }; targets?: Array<Record<string, unknown>> };
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `${file}: panel ${p.title} has targets`);
      assert.equal(p.datasource?.uid, `\${${datasource.name}}`, `${file}: panel ${p.title} uses the datasource variable`);
      const refIds = new Set<unknown>();
      for (const target of p.targets!) {
        assert.equal(typeof target.expr, 'string', `${file}: ${p.title} target has expr`);
        assert.equal(typeof target.refId, 'string', `${file}: ${p.title} target has refId`);
        assert.ok(!refIds.has(target.refId), `${file}: ${p.title}: refIds are unique`);
        refIds.add(target.refId);
      }
    }
  }
});
