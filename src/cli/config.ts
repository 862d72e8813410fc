import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { stringify as stringifyYaml } from 'yaml';
import { loadPipeline } from '../config/load.js';
import { formatPipelineJsonSchema } from '../config/json-schema.js';
import { makeConfigReference, replaceReferenceBlock } from '../config/reference.js';
import { ConfigError } from '../errors.js';
import { writeTextFileAtomically } from './options.js';

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
  $ textstream config reference --readme docs/configuration.md`,
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
      if (opts.out) await writeTextFileAtomically(opts.out, text, `${opts.out} (--out)`);
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
  $ textstream config reference --readme docs/configuration.md`,
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
      await writeTextFileAtomically(opts.readme, updated, `${opts.readme} (--readme)`);
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
