import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { currentLogFields } from './logContext.ts';

/**
 * Structured JSON logs. Anything that looks like a credential is redacted by path, so a secret
 * that slips into a logged object still never reaches the log.
 */
export function createLogger(
  name: string,
  level = process.env.CTEM_LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  const options: LoggerOptions = {
    name,
    level,
    // Correlation ids (workflow, run, activity, exposure) of the activity running now: logContext.ts.
    mixin: () => ({ ...currentLogFields() }),
    redact: {
      paths: [
        '*.password',
        '*.token',
        '*.secret',
        '*.apiKey',
        '*.authorization',
        '*.signingSecret',
        'password',
        'token',
        'secret',
        'apiKey',
        'headers.authorization',
        'headers.cookie',
        'databaseUrl',
        '*.databaseUrl',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Hide the password part of a connection URL for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
