import type { Logger } from 'pino';

/**
 * SIGINT/SIGTERM abort the controller so the pipeline drains in order; a second signal
 * exits at once (the user means it). Returns a function that removes the handlers.
 */
export function onShutdownSignal(controller: AbortController, logger: Logger): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(130);
    }
    logger.info({ signal }, 'shutting down: finishing the current batch and files');
    controller.abort(new Error(`received ${signal}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
