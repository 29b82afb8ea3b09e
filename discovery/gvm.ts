// The GVM / OpenVAS connector over GMP: create a target for the hosts, a task with the configured
// scan config and scanner, start it, poll it, fetch its report in GVM's XML format and feed it to the
// ordinary ingest path. Targets and tasks are named after the request, so GVM's own history shows
// what ctem asked for.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { durationMs, type Scope } from '../domain/config.ts';
import { resolveSecret } from '../runtime/config.ts';
import type { RescanRequest, RescanTicket, ScanConnector } from '../domain/ports.ts';
import type { IngestSummary } from '../ingest/ingest.ts';
import {
  ConnectorConfigError,
  gvmSchema,
  integrationSection,
  scopeScanSettings,
  scopeTargets,
  type GvmSettings,
} from './config.ts';
import { escapeXml, GmpConnection, GmpError, gmpChild, type GmpEndpoint } from './gmp.ts';
import { heartbeat } from './heartbeat.ts';
import { ingestOutput, rescanThrough, type ConnectorContext, type ScopeScanner } from './ingestRun.ts';
import { reportedHosts } from './reportHosts.ts';
import { assetsReportedAs } from './targets.ts';

/** GVM's built-in XML report format. */
export const GVM_XML_REPORT_FORMAT = 'a994b278-1f62-11e1-96ac-406186ea4fc5';
const FAILED_TASK = new Set(['Stopped', 'Interrupted', 'Stop Requested', 'Delete Requested']);

export interface GvmScanRequest {
  /** Names the GVM target and task. */
  label: string;
  targets: string[];
  configId?: string;
  signal?: AbortSignal;
}

/** Run one scan through GMP; the XML report lands in a fresh temp folder. */
export async function runGvmScan(
  settings: GvmSettings,
  password: string,
  baseDir: string,
  req: GvmScanRequest,
): Promise<{ file: string; dir: string; reportId: string }> {
  const endpoint: GmpEndpoint = settings.socket
    ? { socket: path.resolve(baseDir, settings.socket) }
    : {
        host: settings.host!,
        port: settings.port,
        ca: settings.caFile ? path.resolve(baseDir, settings.caFile) : undefined,
        serverName: settings.serverName,
      };
  const gmp = await GmpConnection.connect(endpoint);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ctem-gvm-'));
  try {
    await gmp.command(
      `<authenticate><credentials><username>${escapeXml(settings.username)}</username><password>${escapeXml(password)}</password></credentials></authenticate>`,
    );
    const target = await gmp.command(
      `<create_target><name>${escapeXml(`ctem ${req.label}`)}</name><hosts>${escapeXml(req.targets.join(','))}</hosts><port_list id="${settings.portListId}"/></create_target>`,
    );
    const task = await gmp.command(
      `<create_task><name>${escapeXml(`ctem ${req.label}`)}</name><config id="${req.configId ?? settings.configId}"/><target id="${escapeXml(target.attrs.id ?? '')}"/><scanner id="${settings.scannerId}"/></create_task>`,
    );
    const taskId = task.attrs.id;
    if (!taskId) throw new GmpError('gvmd created the task without returning its id');
    const started = await gmp.command(`<start_task task_id="${escapeXml(taskId)}"/>`);
    const reportId = gmpChild(started, 'report_id')?.text.trim();
    if (!reportId) throw new GmpError('gvmd started the task without returning a report id');

    const deadline = Date.now() + durationMs(settings.timeout);
    for (;;) {
      const tasks = await gmp.command(`<get_tasks task_id="${escapeXml(taskId)}"/>`);
      const t = gmpChild(tasks, 'task');
      const status = t ? gmpChild(t, 'status')?.text.trim() : undefined;
      heartbeat({ gvmTask: taskId, status, progress: t ? gmpChild(t, 'progress')?.text.trim() : undefined });
      if (status === 'Done') break;
      if (status && FAILED_TASK.has(status))
        throw new GmpError(`the GVM task ${taskId} ended as "${status}"; no report to import`);
      if (Date.now() > deadline)
        throw new GmpError(
          `the GVM task ${taskId} did not finish within ${settings.timeout} (still "${status ?? '?'}")`,
        );
      await sleep(durationMs(settings.pollInterval), undefined, { signal: req.signal });
    }
    const file = path.join(dir, `gvm-${reportId}.xml`);
    await gmp.commandToFile(
      `<get_reports report_id="${escapeXml(reportId)}" format_id="${GVM_XML_REPORT_FORMAT}" details="1" ignore_pagination="1" filter="apply_overrides=0 min_qod=70 levels=hmlg rows=-1 first=1"/>`,
      'report',
      file,
    );
    return { file, dir, reportId };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    gmp.close();
  }
}

export function createGvmConnector(ctx: ConnectorContext): ScanConnector & ScopeScanner {
  const settings = (): { settings: GvmSettings; password: string } => {
    const s = integrationSection(ctx.config, 'gvm', gvmSchema);
    return { settings: s, password: resolveSecret(s.password, process.env, ctx.deps.baseDir) };
  };
  const configFor = (scope: Scope | undefined): string | undefined =>
    scope ? scopeScanSettings(ctx.config, scope)?.configId : undefined;
  return {
    name: 'gvm',
    rescan: async (req: RescanRequest): Promise<RescanTicket> =>
      await rescanThrough(ctx, 'gvm', req, async (targets) => {
        const { settings: s, password } = settings();
        const scope = ctx.config.scopes.find((x) => x.name === req.scope);
        const run = await runGvmScan(s, password, ctx.deps.baseDir, {
          label: `re-scan ${req.requestId}`,
          targets: targets.map((t) => t.target),
          configId: configFor(scope),
        });
        const reached = await reportedHosts(run.file, 'openvas');
        const coveredAssetIds = await assetsReportedAs(ctx.deps.pool, reached, {
          among: targets.map((t) => t.assetId),
        });
        return { file: run.file, format: 'openvas', dir: run.dir, coveredAssetIds };
      }),
    scanScope: async (scope: Scope): Promise<IngestSummary> => {
      const { settings: s, password } = settings();
      const targets = scopeTargets(scope, scopeScanSettings(ctx.config, scope));
      if (targets.length === 0)
        throw new ConnectorConfigError(
          `ctem.yaml scopes[${ctx.config.scopes.indexOf(scope)}]: scope ${scope.name} has no CIDR, literal host name or scan.targets to scan`,
        );
      const run = await runGvmScan(s, password, ctx.deps.baseDir, {
        label: `scan cycle ${scope.name} ${new Date(ctx.deps.clock()).toISOString()}`,
        targets,
        configId: configFor(scope),
      });
      const reached = await reportedHosts(run.file, 'openvas');
      const coveredAssetIds = await assetsReportedAs(ctx.deps.pool, reached, { scope: scope.name });
      return await ingestOutput(
        ctx,
        { file: run.file, format: 'openvas', dir: run.dir, coveredAssetIds },
        { cycleScope: scope.name },
      );
    },
  };
}
