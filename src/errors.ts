/**
 * One error base class for the whole pipeline. Every failure carries a code from a
 * closed union (so callers switch on codes, never on message text), whether retrying
 * could help, and the underlying cause.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  INPUT_INVALID: 'INPUT_INVALID',
  SOURCE_FAILED: 'SOURCE_FAILED',
  SINK_FAILED: 'SINK_FAILED',
  MODEL_FAILED: 'MODEL_FAILED',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  CHECKPOINT_INVALID: 'CHECKPOINT_INVALID',
  TOKENIZER_INVALID: 'TOKENIZER_INVALID',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface TextstreamErrorOptions {
  cause?: unknown;
  canRetry?: boolean;
}

export class TextstreamError extends Error {
  readonly code: ErrorCode;
  readonly canRetry: boolean;

  constructor(code: ErrorCode, message: string, options: TextstreamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TextstreamError';
    this.code = code;
    this.canRetry = options.canRetry ?? false;
  }
}

export class ConfigError extends TextstreamError {
  static readonly code = ErrorCodes.CONFIG_INVALID;
  /** Dotted path of the offending field, e.g. `pipeline.sink.rotateRows`. */
  readonly path: string;

  constructor(path: string, message: string, options: TextstreamErrorOptions = {}) {
    super(ConfigError.code, `${path}: ${message}`, options);
    this.name = 'ConfigError';
    this.path = path;
  }
}

/** Invalid input to a function or stage: a bad argument, a batch without a column it needs. */
export class InputError extends TextstreamError {
  static readonly code = ErrorCodes.INPUT_INVALID;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(InputError.code, message, options);
    this.name = 'InputError';
  }
}

export class SinkError extends TextstreamError {
  static readonly code = ErrorCodes.SINK_FAILED;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(SinkError.code, message, { canRetry: true, ...options });
    this.name = 'SinkError';
  }
}

export class SourceError extends TextstreamError {
  static readonly code = ErrorCodes.SOURCE_FAILED;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(SourceError.code, message, options);
    this.name = 'SourceError';
  }
}

/** The model failed to score or train (a disposed learner, a broken training pass). */
export class ModelError extends TextstreamError {
  static readonly code = ErrorCodes.MODEL_FAILED;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(ModelError.code, message, options);
    this.name = 'ModelError';
  }
}

export class BackendError extends TextstreamError {
  static readonly code = ErrorCodes.BACKEND_UNAVAILABLE;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(BackendError.code, message, options);
    this.name = 'BackendError';
  }
}

export class CheckpointError extends TextstreamError {
  static readonly code = ErrorCodes.CHECKPOINT_INVALID;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(CheckpointError.code, message, options);
    this.name = 'CheckpointError';
  }
}

export class TokenizerError extends TextstreamError {
  static readonly code = ErrorCodes.TOKENIZER_INVALID;
  constructor(message: string, options: TextstreamErrorOptions = {}) {
    super(TokenizerError.code, message, options);
    this.name = 'TokenizerError';
  }
}
