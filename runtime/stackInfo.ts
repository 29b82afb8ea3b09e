// What a running `ctem up` tells other `ctem` commands about itself, in $CTEM_HOME/stack.json.

export interface StackInfo {
  pid: number;
  startedAt: string;
  databaseUrl: { embedded: boolean; port?: number };
  temporal: {
    address: string;
    namespace: string;
    embedded: boolean;
    /** Which Temporal `ctem up` started: the CLI's dev server or the real server on PostgreSQL. */
    engine?: 'dev' | 'server';
    uiUrl?: string;
  };
  taskQueue: string;
  http: { host: string; port: number };
  /** Where Prometheus scrapes GET /metrics (absent when metrics.enabled is false). */
  metrics?: { host: string; port: number };
}

export const STACK_FILE = 'stack.json';
