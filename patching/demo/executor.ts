// The `demo` patch executor used by `ctem demo`: it plans the package upgrades a real executor
// would run and reports them as applied WITHOUT touching any machine (the demo's hosts are
// fictional). Its name, plan and output all say so, so the audit log never mistakes it for a fix;
// the fix is only believed once the re-scan shows the weakness gone.
import type { PatchExecutor, PatchPlan, PatchResult, PatchTarget } from '../../domain/ports.ts';

export function createDemoPatchExecutor(): PatchExecutor {
  return {
    name: 'demo',
    async plan(rolloutId: string, targets: PatchTarget[]): Promise<PatchPlan> {
      const steps = targets.flatMap((t) =>
        t.packages.map((p) => ({
          host: t.host,
          description: `would upgrade ${p.name}${p.fixedVersion ? ` to ${p.fixedVersion} or later` : ''} (demo: no machine is changed)`,
        })),
      );
      return {
        executor: 'demo',
        rolloutId,
        targets,
        summary: `demo plan: ${steps.length} package upgrade(s) on ${targets.map((t) => t.host).join(', ')}; nothing will run`,
        steps,
      };
    },
    async apply(plan: PatchPlan): Promise<PatchResult> {
      return {
        ok: true,
        hosts: plan.targets.map((t) => ({
          host: t.host,
          ok: true,
          output: `demo executor: simulated ${plan.steps.filter((s) => s.host === t.host).length} upgrade(s); no command ran on ${t.host}`,
        })),
        finishedAt: new Date().toISOString(),
      };
    },
  };
}
