// The SSH package check against a real OpenSSH sshd (test/support/sshd.ts): dpkg-query and rpm are
// shims in the session's sandbox answering from a small package database; the check logs in with
// key auth and a pinned host key, as the patching executor does.
import { describe, expect, it } from 'vitest';
import { testDatabase } from '../support/db.ts';
import { testSshd } from '../support/sshd.ts';
import { createSshPackageConnector } from '../../discovery/sshPackage.ts';
import { ingestReport } from '../../ingest/ingest.ts';
import { scanDiff } from '../../ingest/diff.ts';
import { exposureId } from '../../domain/exposure.ts';
import { connectorContext } from './connectorContext.ts';
import { finding, host, stream } from './findings.ts';

const dpkgQuery = {
  sh: [
    '# dpkg-query -W -f=${Version} PACKAGE',
    'case "$3" in',
    "  openssl) printf '%s' '3.0.11-1~deb12u2' ;;",
    "  libxml2) printf '%s' '2.9.14+dfsg-1.3~deb12u1' ;;",
    '  *) echo "dpkg-query: no packages found matching $3" >&2; exit 1 ;;',
    'esac',
  ].join('\n'),
};
const rpm = {
  sh: [
    '# rpm -q --qf %{VERSION}-%{RELEASE} PACKAGE',
    'case "$4" in',
    "  openssl) printf '%s' '3.0.7-27.el9' ;;",
    '  *) echo "package $4 is not installed"; exit 1 ;;',
    'esac',
  ].join('\n'),
};

async function setup(shims: Record<string, { sh: string }>) {
  const db = await testDatabase();
  const sshd = await testSshd({ shims });
  const ctx = connectorContext(db.pool, {
    version: 1,
    integrations: {
      ssh: {
        user: sshd.user,
        port: sshd.port,
        privateKey: `file:${sshd.privateKeyPath}`,
        knownHosts: sshd.knownHostsPath,
      },
    },
    scopes: [{ name: 'lab', match: { cidrs: ['127.0.0.0/8'] }, scan: { connector: 'ssh-package' } }],
  });
  return { db, sshd, ctx };
}

describe('the SSH package check against a real sshd', () => {
  it('marks gone what is fixed or not installed, keeps what is below the fix, and leaves the rest alone', async () => {
    const { db, sshd, ctx } = await setup({ 'dpkg-query': dpkgQuery });
    const web = host(undefined, '127.0.0.1');
    const pkg = (name: string, version: string, fixedVersion: string) => ({
      package: { name, version, fixedVersion, type: 'deb' },
    });
    await ingestReport(
      db.pool,
      {
        source: 'week1.nessus',
        format: 'nessus',
        findings: stream([
          finding(web, 'CVE-2023-5678', pkg('openssl', '3.0.9-1', '3.0.11-1~deb12u2')),
          finding(
            web,
            'CVE-2024-25062',
            pkg('libxml2', '2.9.14+dfsg-1.3~deb12u1', '2.9.14+dfsg-1.3~deb12u2'),
          ),
          finding(web, 'CVE-2023-38545', pkg('curl', '7.88.1-10', '7.88.1-10+deb12u4')),
          finding(web, 'CVE-2024-0001'),
        ]),
      },
      { scopes: ctx.config.scopes },
    );
    const { rows } = await db.pool.query<{ id: number }>('select id from assets');
    const assetId = rows[0]!.id;

    const ticket = await createSshPackageConnector(ctx).rescan({
      requestId: 'verify-ssh-1',
      scope: 'lab',
      assetIds: [assetId],
      weaknessKeys: ['CVE-2023-5678', 'CVE-2024-25062', 'CVE-2023-38545', 'CVE-2024-0001'],
      notBefore: new Date().toISOString(),
    });
    expect(ticket, ticket.detail).toMatchObject({ status: 'done' });
    expect(ticket.detail).toMatch(/no package and fixed version known for CVE-2024-0001/);
    expect(ticket.detail).toMatch(/libxml2 2\.9\.14\+dfsg-1\.3~deb12u1 < 2\.9\.14\+dfsg-1\.3~deb12u2/);
    expect(await scanDiff(db.pool, ticket.scanId!)).toEqual({
      new: [],
      gone: [exposureId(assetId, 'CVE-2023-38545'), exposureId(assetId, 'CVE-2023-5678')],
      reappeared: [],
      retired: [],
    });
    const present = await db.pool.query<{ vuln_key: string; present: boolean }>(
      'select vuln_key, present from exposures order by vuln_key',
    );
    expect(present.rows).toEqual([
      { vuln_key: 'CVE-2023-38545', present: false },
      { vuln_key: 'CVE-2023-5678', present: false },
      { vuln_key: 'CVE-2024-0001', present: true },
      { vuln_key: 'CVE-2024-25062', present: true },
    ]);
    // Exactly these commands ran, each argument one word: nothing was interpolated into a shell.
    expect((await sshd.calls('dpkg-query')).map((c) => c.argv)).toEqual([
      ['-W', '-f=${Version}', 'curl'],
      ['-W', '-f=${Version}', 'openssl'],
      ['-W', '-f=${Version}', 'libxml2'],
    ]);
    const scan = await db.pool.query('select scanner, covered_keys, request_id from scans where id = $1', [
      ticket.scanId,
    ]);
    expect(scan.rows[0]).toEqual({
      scanner: 'ssh-package',
      covered_keys: ['CVE-2023-38545', 'CVE-2023-5678', 'CVE-2024-25062'],
      request_id: 'verify-ssh-1',
    });
  });

  it('uses rpm on an RPM host, and refuses a host whose key is not the pinned one', async () => {
    const { db, sshd, ctx } = await setup({ rpm });
    await ingestReport(
      db.pool,
      {
        source: 'week1.nessus',
        format: 'nessus',
        findings: stream([
          finding(host(undefined, '127.0.0.1'), 'CVE-2023-0286', {
            package: { name: 'openssl', version: '3.0.1-43.el9', fixedVersion: '3.0.7-16.el9' },
          }),
        ]),
      },
      { scopes: ctx.config.scopes },
    );
    const assetId = (await db.pool.query<{ id: number }>('select id from assets')).rows[0]!.id;
    const connector = createSshPackageConnector(ctx);
    const ticket = await connector.rescan({
      requestId: 'rpm-1',
      scope: 'lab',
      assetIds: [assetId],
      weaknessKeys: ['CVE-2023-0286'],
      notBefore: new Date().toISOString(),
    });
    expect((await scanDiff(db.pool, ticket.scanId!)).gone).toEqual([exposureId(assetId, 'CVE-2023-0286')]);
    expect((await sshd.calls('rpm')).map((c) => c.argv)).toEqual([
      ['-q', '--qf', '%{VERSION}-%{RELEASE}', 'openssl'],
    ]);

    await sshd.rotateHostKey();
    await expect(
      connector.rescan({
        requestId: 'rpm-2',
        scope: 'lab',
        assetIds: [assetId],
        weaknessKeys: ['CVE-2023-0286'],
        notBefore: new Date().toISOString(),
      }),
    ).rejects.toThrow(/host key|not pinned|changed/i);
  });
});
