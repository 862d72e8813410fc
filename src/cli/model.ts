import path from 'node:path';
import { Option, type Command } from 'commander';
import { selectBackend } from '../model/backend.js';
import { loadCheckpointAt } from '../model/checkpoint-roots.js';
import { ExportFiles, ExportFormats, exportKeras } from '../model/export.js';

export function registerModelCommand(program: Command): void {
  const model = program
    .command('model')
    .description('Work with trained models: export a checkpoint for other tools.')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream model export out/spamassassin --format keras --out keras-model
  $ python keras-model/${ExportFiles.LOADER}          writes keras-model/model.keras`,
    );

  model
    .command('export')
    .description(
      "Export a checkpoint's model and tokenizer. --format keras writes model.json + weights.bin (tfjs layers " +
        `format, stock layers), ${ExportFiles.TOKENIZER} (Keras to_json) and ${ExportFiles.LOADER}, which turns them into a Keras 3 model.keras.`,
    )
    .argument('<checkpoint dir>', "a pipeline's output folder (out/spamassassin: its input's latest checkpoint), a checkpoint root (LATEST is used) or one ckpt-… directory")
    .addOption(new Option('--format <format>', 'what to write').choices(Object.values(ExportFormats)).default(ExportFormats.KERAS))
    .requiredOption('--out <dir>', 'the directory to write (created if missing)')
    .addHelpText(
      'after',
      `
Examples:
  $ textstream model export out/spamassassin --format keras --out keras-model
  $ textstream model export out/spamassassin/_checkpoints/spamassassin --out keras-model
  $ textstream model export out/spamassassin/_checkpoints/spamassassin/ckpt-000000001234-1767225600000 --out keras-model
  $ $(bash scripts/python-env.sh) keras-model/${ExportFiles.LOADER}
  $ python keras-model/${ExportFiles.LOADER} --predict tokens.json   also print predictions

To go the other way (a Keras model as a pipeline's starting point), write it with
  $ python scripts/keras_interop.py from-keras model.keras keras-init
and set model.initialModel: keras-init/model.json in the pipeline file.

Exit codes: 0 ok, 1 damaged checkpoint or write failure, 2 usage error (missing
checkpoint, unknown --format).`,
    )
    .option('--json', 'print the result as one JSON object', false)
    .action(async (checkpointDir: string, opts: { format: string; out: string; json: boolean }) => {
      const checkpoint = await loadCheckpointAt(checkpointDir);
      // Only plain tensor work: the cpu backend needs no native or wasm files.
      await selectBackend('cpu');
      const out = path.resolve(opts.out);
      const result = await exportKeras(checkpoint, out);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...result, loader: path.join(out, ExportFiles.LOADER) })}\n`);
        return;
      }
      const tokenizer = result.tokenizerWords === null ? 'no tokenizer in the checkpoint' : `tokenizer: ${result.tokenizerWords} words`;
      process.stdout.write(
        `textstream model export: model version ${result.modelVersion} → ${out}\n` +
          `  files      ${result.files.join(', ')}\n` +
          `  ${tokenizer}\n` +
          `  next       python ${path.join(out, ExportFiles.LOADER)}   (writes ${path.join(out, 'model.keras')})\n`,
      );
    });
}
