import { InputError } from '../errors.js';
import { describeJsonType, fieldDefault, listPipelineFields, type PipelineField } from './json-schema.js';
import { envVariableFor } from './env.js';

/** The markers the generated reference sits between (in docs/configuration.md). */
export const REFERENCE_START = '<!-- config-reference:start -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

/**
 * The configuration reference as a Markdown table: one row per field, with its type,
 * default, description and environment variable, generated from the schema so it cannot
 * disagree with what loadPipeline accepts.
 */
export function makeConfigReference(fields: readonly PipelineField[] = listPipelineFields()): string {
  const rows = fields.map((field) => {
    const { has, value } = fieldDefault(field);
    const def = has ? code(JSON.stringify(value)) : field.required ? '*required*' : '—';
    const only = field.variant ? `(${field.variant} only) ` : '';
    return [
      code(field.path.join('.')),
      code(describeJsonType(field.schema)),
      def,
      escapeHtml(`${only}${field.schema.description ?? ''}`),
      code(envVariableFor(field.path)),
    ];
  });
  const header = ['field', 'type', 'default', 'description', 'environment'];
  const lines = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.map(cell).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/** Backticks around a value; a backtick inside one is doubled into a wider fence. */
function code(text: string): string {
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** `<file>` outside a code span would be read as an HTML tag and vanish. */
function escapeHtml(text: string): string {
  return text
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') : part))
    .join('`');
}

/** A pipe would end the cell, a newline the row. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Replaces what is between the markers in `markdown` with `block`; throws if either is missing. */
export function replaceReferenceBlock(markdown: string, block: string): string {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new InputError(`the markers ${REFERENCE_START} … ${REFERENCE_END} are missing`);
  return `${markdown.slice(0, start + REFERENCE_START.length)}\n\n${block}\n${markdown.slice(end)}`;
}

/** What is between the markers, as replaceReferenceBlock puts it; null without markers. */
export function extractReferenceBlock(markdown: string): string | null {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < start) return null;
  return markdown.slice(start + REFERENCE_START.length, end).replace(/^\n\n/, '').replace(/\n$/, '');
}
