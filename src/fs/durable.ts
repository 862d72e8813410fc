/**
 * Writing files so they survive a crash or a power cut: fsync the file, and fsync the
 * directory whose entry a create or a rename changed. Shared by the Parquet sink, the
 * dead-letter file and checkpoints; it sits below both model/ and sinks/ because the model
 * does no I/O through sinks/ (it must not import from there).
 */
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';

/** Makes a rename or a new directory entry durable (Linux: fsync on the directory). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `mkdir -p` that also fsyncs the parent of every directory it creates. */
export async function makeDirectoryDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Every directory from `first` down to `dir` is new; its entry lives in its parent.
  let current = path.resolve(dir);
  const stop = path.dirname(path.resolve(first));
  while (current !== stop) {
    const parent = path.dirname(current);
    await fsyncDirectory(parent);
    if (parent === current) break;
    current = parent;
  }
}

/**
 * Creates `file` (which must not exist) with `bytes` and fsyncs it. Its directory entry is
 * durable only once the caller fsyncs the directory (usually after a rename).
 */
export async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
