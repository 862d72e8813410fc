import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { stringify as stringifyYaml } from 'yaml';
import { loadPipeline } from '../config/load.js';
import { formatPipelineJsonSchema } from '../config/json-schema.js';
import { makeConfigReference, replaceReferenceBlock } from '../config/reference.js';
import { ConfigError, SinkError } from '../errors.js';

export function registerConfigCommand(program: Command): void {
  const config = program
    .command('config')
    .description('The pipeline definition: its JSON Schema, its reference table, and a file as it would run.')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream config show pipelines/spamassassin.yaml
  $ textstream config schema --out pipelines/pipeline.schema.json
  $ textstream config reference --readme README.md`,
    );

  config
    .command('schema')
    .description('Print the JSON Schema of pipeline files (for editors: yaml-language-server, VS Code).')
    .option('--out <file.json>', 'write it to this file instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream config schema --out pipelines/pipeline.schema.json

Put "# yaml-language-server: $schema=./pipeline.schema.json" as a pipeline file's first
line (path relative to it) for completion, hover help and checks in the editor.`,
    )
    .action(async (opts: { out?: string }) => {
      const text = formatPipelineJsonSchema();
      if (opts.out) await writeAtomically(opts.out, text, '--out');
      else process.stdout.write(text);
    });

  config
    .command('reference')
    .description('Print every field of a pipeline file with its type, default, meaning and environment variable (Markdown).')
    .option('--readme <file.md>', 'replace the table between the config-reference markers in this file instead of printing it')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream config reference
  $ textstream config reference --readme README.md`,
    )
    .action(async (opts: { readme?: string }) => {
      const table = makeConfigReference();
      if (!opts.readme) {
        process.stdout.write(table);
        return;
      }
      let markdown: string;
      try {
        markdown = await readFile(opts.readme, 'utf8');
      } catch (cause) {
        throw new ConfigError(opts.readme, `cannot read it (${(cause as Error).message})`, { cause });
      }
      let updated: string;
      try {
        updated = replaceReferenceBlock(markdown, table);
      } catch (cause) {
        throw new ConfigError(opts.readme, (cause as Error).message, { cause });
      }
      await writeAtomically(opts.readme, updated, '--readme');
    });

  config
    .command('show')
    .description('Validate a pipeline file and print it as it would run: defaults filled in, TEXTSTREAM_* overrides applied.')
    .argument('<pipeline.yaml>', 'the pipeline definition')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream config show pipelines/spamassassin.yaml
  $ TEXTSTREAM_SINK_DIR=/data/out TEXTSTREAM_MODEL_BACKEND=wasm textstream config show pipelines/spamassassin.yaml

Exit code 2, with the file or variable and the field named, when it is not valid.`,
    )
    .action(async (file: string) => {
      const pipeline = await loadPipeline(file);
      process.stdout.write(stringifyYaml(pipeline));
    });
}

/** Written beside, then renamed: a reader (or an editor) never sees half a file. */
async function writeAtomically(file: string, text: string, option: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    // As tokenizer fit and report do: a missing folder is created, not an error.
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await writeFile(temporary, text);
    await rename(temporary, file);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new SinkError(`cannot write ${file} (${option}): ${(cause as Error).message}`, { cause, canRetry: false });
  }
}
