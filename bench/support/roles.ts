// Benchmarks that run the worker and the bot in their own processes (bench:chat, bench:soak) start
// their own script again with `--role worker|bot`; these are the two halves of that.
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parseConfig } from '../../domain/config.ts';
import { createPool } from '../../runtime/pool.ts';
import { createWorker, installWorkerRuntime } from '../../worker/worker.ts';
import { HttpServer } from '../../bots/http.ts';
import { startChatBots } from '../../bots/mount.ts';
import { compose } from '../../app/compose.ts';

export type Role = 'worker' | 'bot';

export interface RoleProcesses {
  /** Stop functions, newest last; the caller runs them in reverse at the end. */
  stops: (() => Promise<void>)[];
  /** Root pid of each role's process, for CPU and memory sampling. */
  pids: Partial<Record<Role, number>>;
}

/** Start `script` in another role; resolves with what the child printed after "ready". */
export async function startRole(
  procs: RoleProcesses,
  script: string,
  role: Role,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<string> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, '--role', role], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.pids[role] = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  procs.stops.push(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  return await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready ?(\S*)\n/.exec(out);
      if (m) resolve(m[1] ?? '');
    });
    child.once('exit', (code) =>
      reject(new Error(`the ${role} process exited (${code}) before it was ready`)),
    );
  });
}

/**
 * The worker role: a Temporal worker with every activity, configured from BENCH_* variables, until
 * SIGTERM. Prints "ready" once it polls.
 */
export async function runBenchWorker(opts: { name: string; poolSize: number; maxCachedWorkflows?: number }) {
  const env = process.env;
  const config = parseConfig(env.BENCH_CONFIG ?? '');
  const workerLog = pino({ level: env.CTEM_BENCH_LOG ?? 'error' });
  installWorkerRuntime(workerLog);
  const pool = createPool(env.BENCH_DB_URL ?? '', opts.poolSize);
  const connection = await NativeConnection.connect({ address: env.BENCH_TEMPORAL ?? '' });
  const worker = await createWorker({
    connection,
    namespace: 'default',
    taskQueue: env.BENCH_TASK_QUEUE ?? '',
    deps: compose({
      pool,
      config,
      baseDir: process.cwd(),
      log: workerLog,
      workerName: `${opts.name}:${process.pid}`,
    }).deps,
    ...(opts.maxCachedWorkflows === undefined
      ? {}
      : { extra: { maxCachedWorkflows: opts.maxCachedWorkflows } }),
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
  await connection.close();
  await pool.end();
}

/**
 * The bot role: the project's HTTP server with the Slack bot, configured from BENCH_* variables, until
 * SIGTERM. Prints "ready <port>".
 */
export async function runBenchBot(opts: { poolSize: number }): Promise<void> {
  const env = process.env;
  const config = parseConfig(env.BENCH_CONFIG ?? '');
  const botLog = pino({ level: env.CTEM_BENCH_LOG ?? 'error' });
  const pool = createPool(env.BENCH_DB_URL ?? '', opts.poolSize);
  const connection = await Connection.connect({ address: env.BENCH_TEMPORAL ?? '' });
  const client = new Client({ connection, namespace: 'default' });
  const http = new HttpServer(botLog);
  const composition = compose({ pool, config, baseDir: process.cwd(), log: botLog, env });
  const bots = await startChatBots({
    http,
    config,
    chat: composition.chat,
    client,
    log: botLog,
    baseDir: process.cwd(),
    env,
    alerts: false,
  });
  if (!bots) throw new Error('the Slack bot did not start');
  const port = await http.listen(0, '127.0.0.1');
  const stopped = new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  process.stdout.write(`ready ${port}\n`);
  await stopped;
  await http.close();
  await bots.stop();
  composition.stop();
  await connection.close();
  await pool.end();
}
