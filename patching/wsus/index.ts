// Patching through WSUS (updates approved by KB for the scope's computer group, over SSH to the WSUS
// server): the executor and its doctor check, the server's SSH greeting.
import type { PatchExecutorModule } from '../module.ts';
import { building } from '../executors.ts';
import { PatchConfigError, scopePatchSettings, wsusIntegration } from '../config.ts';
import { greeting } from '../../runtime/probe.ts';
import { WsusPatchExecutor } from './executor.ts';

export const wsus: PatchExecutorModule = {
  name: 'wsus',
  create: (ctx) =>
    building(ctx, () => {
      if (!ctx.scope) throw new PatchConfigError('the wsus executor needs a scope (its patch.targetGroup)');
      const group = scopePatchSettings(ctx.config, ctx.scope.name).targetGroup!;
      return new WsusPatchExecutor(wsusIntegration(ctx.config), group, { baseDir: ctx.deps.baseDir });
    }),
  doctor(config) {
    if (config.integrations.wsus === undefined) return [];
    const settings = wsusIntegration(config);
    return [
      {
        name: 'wsus',
        check: async () => {
          const banner = await greeting(settings.server, settings.ssh.port, /^SSH-2\.0-/);
          return `${settings.server}:${settings.ssh.port} ${banner}`;
        },
      },
    ];
  },
};
