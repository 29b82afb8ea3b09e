// Patching through Red Hat Satellite (errata applied by remote execution): the executor and its
// doctor check, an authenticated read of the hosts API.
import type { PatchExecutorModule } from '../module.ts';
import { building, heartbeat } from '../executors.ts';
import { satelliteIntegration } from '../config.ts';
import { basicCredentials, httpJson, trimUrl } from '../../runtime/probe.ts';
import { SatellitePatchExecutor } from './executor.ts';

export const satellite: PatchExecutorModule = {
  name: 'satellite',
  create: (ctx) =>
    building(
      ctx,
      () =>
        new SatellitePatchExecutor(satelliteIntegration(ctx.config), {
          baseDir: ctx.deps.baseDir,
          onProgress: (d) => heartbeat(d),
        }),
    ),
  doctor(config, secret) {
    if (config.integrations.satellite === undefined) return [];
    const settings = satelliteIntegration(config);
    return [
      {
        name: 'satellite',
        check: async () => {
          await httpJson(`${trimUrl(settings.url)}/api/v2/hosts?per_page=1`, {
            authorization: basicCredentials(settings.username, secret(settings.password)),
          });
          return `${settings.url}, hosts readable`;
        },
      },
    ];
  },
};
