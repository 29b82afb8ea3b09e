import type { Readable } from 'node:stream';
import type { Finding } from '../domain/finding.ts';

/**
 * One scanner report format. Every format lives in its own folder under scanners/<format>/
 * with the same tiny interface, and its tests beside it; adding a format means adding one folder and
 * one line in ./registry.ts.
 */
export interface ScannerParser {
  /** Stable format name used by `--format` and stored with each scan ("trivy", "nessus", "nessus-csv"…). */
  readonly format: string;
  /**
   * Cheap sniff: does this report look like this format? `head` is the first 64 KiB of the file as
   * UTF-8 (BOM stripped); `fileName` is the base name. Must not throw.
   */
  detect(head: string, fileName: string): boolean;
  /**
   * Stream the report and yield normalized findings. Memory must stay bounded whatever the file size.
   * Malformed input throws an InputError naming file, line/column (when known) and what was expected.
   */
  parse(input: Readable, ctx: ParseContext): AsyncIterable<Finding>;
}

export interface ParseContext {
  /** Path or name used in error messages. */
  file: string;
}
