// Patching over SSH (apt, dnf, zypper): the executor and its doctor check, an SSH greeting from each
// configured host.
import type { PatchExecutorModule } from '../module.ts';
import { building } from '../executors.ts';
import { sshIntegration } from '../config.ts';
import { greeting } from '../../runtime/probe.ts';
import { SshPatchExecutor } from './executor.ts';

export const ssh: PatchExecutorModule = {
  name: 'ssh',
  create: (ctx) =>
    building(ctx, () => {
      const settings = sshIntegration(ctx.config);
      return new SshPatchExecutor(settings, { settings, baseDir: ctx.deps.baseDir });
    }),
  doctor(config) {
    if (config.integrations.ssh === undefined) return [];
    const settings = sshIntegration(config);
    return Object.entries(settings.hosts).map(([name, h]) => ({
      name: `ssh:${name}`,
      check: async () => {
        const banner = await greeting(h.address ?? name, h.port ?? settings.port, /^SSH-2\.0-/);
        return `${h.address ?? name}:${h.port ?? settings.port} ${banner}`;
      },
    }));
  },
};
