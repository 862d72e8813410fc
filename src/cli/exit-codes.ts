import { TextstreamError, ErrorCodes } from '../errors.js';

/** Exit codes that mean something to scripts: 0 ok, 1 runtime failure, 2 usage or config error. */
export const ExitCodes = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof TextstreamError && err.code === ErrorCodes.CONFIG_INVALID) return ExitCodes.USAGE;
  return ExitCodes.FAILURE;
}
