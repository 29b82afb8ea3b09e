// The Satellite executor against a local server speaking the Foreman/Katello API v2 endpoints it uses.
import { afterEach, describe, expect, it } from 'vitest';
import { PatchInputError } from '../../domain/packages.ts';
import { satelliteIntegrationSchema } from '../../patching/config.ts';
import { jobTag, SatelliteApiError, SatellitePatchExecutor } from '../../patching/satellite/executor.ts';
import type { PatchTarget } from '../../domain/ports.ts';
import {
  startFakeSatellite,
  type FakeErratum,
  type FakeSatellite,
  type FakeSatelliteOptions,
} from '../fakes/satellite.ts';

const errata: FakeErratum[] = [
  {
    id: 5101,
    errata_id: 'RHSA-2024:0310',
    title: 'Moderate: openssl security update',
    type: 'security',
    severity: 'Moderate',
    issued: '2024-01-22',
    reboot_suggested: false,
    cves: ['CVE-2023-5678', 'CVE-2023-6129', 'CVE-2023-6237'],
    packages: ['openssl-1:3.0.7-25.el9_3.x86_64', 'openssl-libs-1:3.0.7-25.el9_3.x86_64'],
    applicableTo: [12, 13],
    installableOn: [12],
  },
  {
    id: 5102,
    errata_id: 'RHSA-2024:1249',
    title: 'Important: kernel security and bug fix update',
    type: 'security',
    severity: 'Important',
    issued: '2024-03-12',
    reboot_suggested: true,
    cves: ['CVE-2024-1086'],
    packages: ['kernel-5.14.0-362.24.1.el9_3.x86_64', 'kernel-core-5.14.0-362.24.1.el9_3.x86_64'],
    applicableTo: [12],
    installableOn: [12],
  },
  {
    id: 5103,
    errata_id: 'RHBA-2024:0402',
    title: 'tzdata bug fix and enhancement update',
    type: 'bugfix',
    severity: 'None',
    issued: '2024-02-01',
    reboot_suggested: false,
    cves: [],
    packages: ['tzdata-2024a-1.el9.noarch'],
    applicableTo: [12],
    installableOn: [12],
  },
];

const base: FakeSatelliteOptions = {
  username: 'ctem',
  password: 'pat-0123456789abcdef',
  hosts: [
    { id: 12, name: 'rhel9-db-01.example.com' },
    { id: 13, name: 'rhel9-db-02.example.com' },
  ],
  errata,
};

let satellite: FakeSatellite | undefined;
afterEach(async () => {
  await satellite?.close();
  satellite = undefined;
});

async function setup(options: Partial<FakeSatelliteOptions> = {}, token = base.password) {
  satellite = await startFakeSatellite({ ...base, ...options });
  const settings = satelliteIntegrationSchema.parse({
    url: satellite.url,
    username: 'ctem',
    password: 'env:SATELLITE_TOKEN',
    pollInterval: '0s',
  });
  return new SatellitePatchExecutor(settings, { baseDir: process.cwd(), env: { SATELLITE_TOKEN: token } });
}

const db01: PatchTarget = {
  assetId: 21,
  host: 'rhel9-db-01.example.com',
  packages: [{ name: 'openssl' }],
  cves: ['CVE-2023-5678', 'CVE-2024-1086'],
};

describe('Satellite executor', () => {
  it('plans the applicable, installable errata for the host and its CVEs', async () => {
    const ex = await setup();
    const plan = await ex.plan('ru:rhel:db-01', [db01]);
    expect(plan.problems).toEqual([]);
    expect(plan.targets[0]!.advisories).toEqual(['RHSA-2024:0310', 'RHSA-2024:1249']);
    expect(plan.steps).toEqual([
      {
        host: 'rhel9-db-01.example.com',
        description:
          'run remote-execution job "katello_errata_install_by_search" on rhel9-db-01.example.com with Errata search query: errata_id ^ (RHSA-2024:0310, RHSA-2024:1249)',
      },
    ]);
    expect(plan.summary).toContain(
      'RHSA-2024:1249 Important Important: kernel security and bug fix update [CVE-2024-1086] (reboot suggested)',
    );
    expect(
      satellite!.requests.map((r) => [
        r.method,
        r.path,
        r.query.search ?? r.query.cve,
        r.query.errata_restrict_installable ?? r.query.errata_restrict_applicable,
      ]),
    ).toEqual([
      ['GET', '/api/v2/hosts', 'name = rhel9-db-01.example.com', undefined],
      ['GET', '/katello/api/v2/errata', 'CVE-2023-5678', 'true'],
      ['GET', '/katello/api/v2/errata', 'CVE-2023-5678', 'true'],
      ['GET', '/katello/api/v2/errata', 'CVE-2024-1086', 'true'],
      ['GET', '/katello/api/v2/errata', 'CVE-2024-1086', 'true'],
    ]);
    expect(satellite!.jobs).toEqual([]);
  });

  it('starts the errata job, polls it to the end and keeps its output', async () => {
    const ex = await setup({ pollsUntilDone: 3 });
    const plan = await ex.plan('ru:rhel:db-01', [db01]);
    const result = await ex.apply(plan);
    const post = satellite!.requests.find((r) => r.method === 'POST');
    expect(post).toEqual({
      method: 'POST',
      path: '/api/v2/job_invocations',
      query: {},
      body: {
        job_invocation: {
          feature: 'katello_errata_install_by_search',
          inputs: { 'Errata search query': 'errata_id ^ (RHSA-2024:0310, RHSA-2024:1249)' },
          targeting_type: 'static_query',
          search_query: 'name = rhel9-db-01.example.com',
          description_format: `Install errata RHSA-2024:0310, RHSA-2024:1249 (${jobTag('ru:rhel:db-01', 'rhel9-db-01.example.com')})`,
        },
      },
    });
    expect(satellite!.requests.filter((r) => r.path === '/api/v2/job_invocations/1001')).toHaveLength(3);
    expect(result.ok).toBe(true);
    expect(result.hosts[0]).toMatchObject({
      host: 'rhel9-db-01.example.com',
      ok: true,
      jobId: '1001',
      rebootRequired: true,
    });
    expect(result.hosts[0]!.output).toContain('job 1001 on rhel9-db-01.example.com: succeeded');
    expect(result.hosts[0]!.output).toContain(
      '  Upgrading        : kernel-core-5.14.0-362.24.1.el9_3.x86_64',
    );
    expect(result.hosts[0]!.output).toContain('Complete!');
    expect([...satellite!.installed.get(12)!]).toEqual(['RHSA-2024:0310', 'RHSA-2024:1249']);
  });

  it('follows the job it already started when the apply is retried', async () => {
    const ex = await setup();
    const plan = await ex.plan('ru:rhel:db-01', [db01]);
    await ex.apply(plan);
    const again = await ex.apply(plan);
    expect(satellite!.jobs).toHaveLength(1);
    expect(satellite!.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(again.hosts[0]).toMatchObject({ ok: true, jobId: '1001' });
  });

  it('reports a failed job as a failed host, with the job output', async () => {
    const ex = await setup({ jobOutcome: () => 'failed' });
    const result = await ex.apply(await ex.plan('ru:rhel:db-01', [db01]));
    expect(result.ok).toBe(false);
    expect(result.hosts[0]!.output).toContain('job 1001 on rhel9-db-01.example.com: failed');
    expect(result.hosts[0]!.output).toContain('Error: Transaction test error:');
  });

  it('says which errata apply but are not in the content view, and which hosts it does not know', async () => {
    const ex = await setup();
    const plan = await ex.plan('ru:rhel', [
      { ...db01, host: 'rhel9-db-02.example.com', cves: ['CVE-2023-5678'] },
      { ...db01, host: 'rhel9-web-09.example.com' },
    ]);
    expect(plan.problems).toEqual([
      {
        host: 'rhel9-db-02.example.com',
        message:
          'RHSA-2024:0310 applies but is not installable: publish and promote a content view version that contains it',
      },
      { host: 'rhel9-web-09.example.com', message: 'Satellite knows no host named rhel9-web-09.example.com' },
    ]);
    expect(plan.summary).toContain(
      'RHSA-2024:0310 Moderate Moderate: openssl security update [CVE-2023-5678, CVE-2023-6129, CVE-2023-6237] — NOT installable from its content view',
    );
  });

  it('installs the errata the scanner named, when it named them', async () => {
    const ex = await setup();
    const plan = await ex.plan('ru:rhel', [{ ...db01, cves: [], advisories: ['RHBA-2024:0402'] }]);
    expect(plan.targets[0]!.advisories).toEqual(['RHBA-2024:0402']);
    expect(satellite!.requests[1]!.query.search).toBe('errata_id ^ (RHBA-2024:0402)');
  });

  it('waits out 429 answers', async () => {
    const ex = await setup({ rateLimitFirst: 2 });
    const plan = await ex.plan('ru:rhel', [{ ...db01, cves: ['CVE-2024-1086'] }]);
    expect(plan.targets[0]!.advisories).toEqual(['RHSA-2024:1249']);
    expect(satellite!.requests.filter((r) => r.path === '/katello/api/v2/errata')).toHaveLength(4);
  });

  it('names the credentials when Satellite refuses them, as a permanent error', async () => {
    const ex = await setup({}, 'expired-token');
    const err = await ex.plan('ru:rhel', [db01]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SatelliteApiError);
    expect((err as SatelliteApiError).permanent).toBe(true);
    expect((err as Error).message).toBe(
      'Satellite GET /api/v2/hosts answered 401: Unable to authenticate user ctem (check integrations.satellite.username and password)',
    );
  });

  it('refuses hostile ids before sending anything', async () => {
    const ex = await setup();
    for (const t of [
      { ...db01, cves: ['CVE-2024-1086) OR (1=1'] },
      { ...db01, cves: [], advisories: ['RHSA-2024:0310, *'] },
      { ...db01, host: 'x" or name ~ "' },
    ]) {
      await expect(ex.plan('ru:rhel', [t])).rejects.toThrow(PatchInputError);
      await expect(
        ex.apply({ executor: 'satellite', rolloutId: 'ru:rhel', targets: [t], summary: '', steps: [] }),
      ).rejects.toThrow(PatchInputError);
    }
    expect(satellite!.requests).toEqual([]);
  });
});
