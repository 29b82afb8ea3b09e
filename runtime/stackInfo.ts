// What a running `ctem up` tells other `ctem` commands about itself, in $CTEM_HOME/stack.json.

export interface StackInfo {
  pid: number;
  startedAt: string;
  databaseUrl: { embedded: boolean; port?: number };
  temporal: { address: string; namespace: string; embedded: boolean; uiUrl?: string };
  taskQueue: string;
  http: { host: string; port: number };
}

export const STACK_FILE = 'stack.json';
