/** One input for the sandbox (test/fuzz/parseWorker.ts). */
export interface FuzzRequest {
  id: number;
  /** parser: one parser on a stream; report: parseReport on a file (gzip, BOM, detection); config/policy: the YAML loaders. */
  mode: 'parser' | 'report' | 'config' | 'policy';
  format?: string;
  /** Base name used in messages (and the temporary file's name in report mode). */
  file: string;
  bytes: Uint8Array;
}

export type FuzzReply =
  | { id: number; ok: true; findings: number }
  | {
      id: number;
      ok: false;
      name: string;
      message: string;
      stack: string;
      /** An InputError or a ConfigError: the project's "one clear error". */
      clear: boolean;
    };
