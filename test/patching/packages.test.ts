import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareDebianVersions,
  compareRpmVersions,
  parseCveId,
  parseErratumId,
  parseHostName,
  parseKbId,
  parsePackageName,
  parsePackageSpec,
  parsePackageVersion,
  PatchInputError,
  satisfiesFixedVersions,
  type PackageManager,
} from '../../domain/packages.ts';

const managers: PackageManager[] = ['apt', 'dnf', 'yum', 'zypper'];

describe('package names and versions, per package manager', () => {
  it('accepts the names and versions real distributions use', () => {
    for (const name of ['openssl', 'libssl3', 'libstdc++6', 'g++-12', 'libssl3:amd64', 'python3.11'])
      expect(parsePackageName('apt', name)).toBe(name);
    for (const v of ['3.0.11-1~deb12u2', '1:2.9.4+dfsg1-7', '2.36-9+deb12u4', '7.88.1-10+deb12u5', '1.2'])
      expect(parsePackageVersion('apt', v)).toBe(v);
    for (const name of [
      'openssl-libs',
      'python3.11-pip',
      'gcc-c++',
      'perl-Net-SSLeay',
      'NetworkManager',
      'libopenssl3',
    ])
      expect(parsePackageName('dnf', name)).toBe(name);
    for (const v of [
      '1:3.0.7-25.el9_3',
      '3.0.7',
      '2.0~rc1-1.fc39',
      '1.2.3^20240101git-1',
      '3.1.4-150600.5.7.1',
    ])
      expect(parsePackageVersion('zypper', v)).toBe(v);
  });

  const hostile = [
    'x; rm -rf /',
    '$(id)',
    '`id`',
    'openssl\nrm -rf /',
    '-oAPT::Get::AllowUnauthenticated=true',
    '--allow-unauthenticated',
    "a'b",
    'a b',
    '',
    'x|y',
    'a&&b',
    'openssl>=1.0',
    '../../etc/passwd',
    '*',
    'x\0y',
    'Openssl', // apt names are lower case
  ];

  it.each(hostile)('refuses %j as a package name for every manager where it is not one', (name) => {
    for (const m of managers) {
      if (m !== 'apt' && name === 'Openssl') continue; // rpm names may have capitals
      expect(() => parsePackageName(m, name)).toThrow(PatchInputError);
    }
  });

  it.each(['1.0; rm -rf /', '$(reboot)', '`id`', '-1', '1.0 2.0', '1.0\n2', "1.0'", '1.0-', '~1', ':1'])(
    'refuses %j as a version',
    (version) => {
      for (const m of managers) expect(() => parsePackageVersion(m, version)).toThrow(PatchInputError);
    },
  );

  it('knows that Debian versions start with a digit while rpm allows letters', () => {
    expect(() => parsePackageVersion('apt', 'latest')).toThrow(PatchInputError);
    expect(parsePackageVersion('dnf', 'git20240101')).toBe('git20240101');
  });

  it('names the field and says nothing ran', () => {
    expect(() => parsePackageSpec('apt', { name: 'x; rm -rf /' }, 'targets[0].packages[2]')).toThrow(
      'targets[0].packages[2].name: "x; rm -rf /" is not a valid apt package name; the scanner data is refused and nothing was run',
    );
  });

  it('splits alternative fixed versions and validates each', () => {
    expect(
      parsePackageSpec('apt', { name: 'openssl', fixedVersion: '1.1.1n-0+deb11u5, 3.0.11-1~deb12u2' }),
    ).toEqual({
      name: 'openssl',
      fixedVersions: ['1.1.1n-0+deb11u5', '3.0.11-1~deb12u2'],
    });
    expect(() => parsePackageSpec('apt', { name: 'openssl', fixedVersion: '1.0, $(id)' })).toThrow(
      /fixedVersion/,
    );
  });

  it('never accepts a string with a shell metacharacter, whatever the manager', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom(...' ;|&$`\'"\\<>(){}*?!#\n\t'.split('')),
        fc.string(),
        (a, meta, b) => {
          const text = `${a}${meta}${b}`;
          for (const m of managers) {
            expect(() => parsePackageName(m, text)).toThrow(PatchInputError);
            expect(() => parsePackageVersion(m, text)).toThrow(PatchInputError);
          }
        },
      ),
    );
  });

  it('validates advisory ids and host names', () => {
    expect(parseKbId('kb5034441')).toBe('KB5034441');
    expect(() => parseKbId('KB5034441; Remove-Item C:\\')).toThrow(/not a KB id/);
    expect(() => parseKbId('KB12')).toThrow(PatchInputError);
    for (const id of [
      'RHSA-2024:1234',
      'RHBA-2023:12345',
      'ALSA-2024:0310',
      'FEDORA-2024-1a2b3c4d5e',
      'openSUSE-SU-2024:0123-1',
    ])
      expect(parseErratumId(id)).toBe(id);
    for (const id of ['RHSA-2024:1234)', 'RHSA-2024:1234, *', 'x', 'errata_id ^ (a)'])
      expect(() => parseErratumId(id)).toThrow();
    expect(parseCveId('CVE-2024-3094')).toBe('CVE-2024-3094');
    expect(() => parseCveId('CVE-2024-3094 OR 1=1')).toThrow();
    for (const h of ['web-01', 'web-01.example.com', '10.0.0.5', '2001:db8::1'])
      expect(parseHostName(h)).toBe(h);
    for (const h of ['web 01', 'web;01', '-oProxyCommand=x', '$(id)'])
      expect(() => parseHostName(h)).toThrow();
  });
});

describe('version ordering', () => {
  const sign = (n: number) => Math.sign(n) + 0;

  it('orders Debian versions as dpkg does', () => {
    const cases: [string, string, number][] = [
      ['1.0', '1.0', 0],
      ['1.0', '1.0-0', 0],
      ['1.0~rc1', '1.0', -1],
      ['1.0~', '1.0', -1],
      ['1.0', '1.0+b1', -1],
      ['1.0a', '1.0', 1],
      ['1:1.0', '2.0', 1],
      ['1.0-1', '1.0-1ubuntu1', -1],
      ['3.0.11-1~deb12u1', '3.0.11-1~deb12u2', -1],
      ['2.7.10', '2.7.9', 1],
      ['1.1.1n-0+deb11u5', '3.0.11-1~deb12u2', -1],
      ['0:1.0', '1.0', 0],
    ];
    for (const [a, b, want] of cases) {
      expect(sign(compareDebianVersions(a, b)), `${a} vs ${b}`).toBe(want);
      expect(sign(compareDebianVersions(b, a)), `${b} vs ${a}`).toBe(0 - want + 0);
    }
  });

  it('orders RPM versions as rpmvercmp does', () => {
    const cases: [string, string, number][] = [
      ['1.0', '1.0', 0],
      ['1.0', '2.0', -1],
      ['2.0.1', '2.0.1a', -1],
      ['5.5p1', '5.5p2', -1],
      ['5.5p10', '5.5p1', 1],
      ['10xyz', '10.1xyz', -1],
      ['xyz10', 'xyz10.1', -1],
      ['1.0~rc1', '1.0', -1],
      ['1.0~rc1', '1.0~rc2', -1],
      ['1.0^', '1.0', 1],
      ['1.0^git1', '1.0.1', -1],
      ['2_0', '2.0', 0],
      ['1.0a', '1.0.1', -1],
      ['1:1.0-1', '2.0-1', 1],
      ['3.0.7-25.el9_3', '3.0.7-24.el9', 1],
      ['3.0.7-25.el9', '3.0.7', 0],
    ];
    for (const [a, b, want] of cases) {
      expect(sign(compareRpmVersions(a, b)), `${a} vs ${b}`).toBe(want);
      expect(sign(compareRpmVersions(b, a)), `${b} vs ${a}`).toBe(0 - want + 0);
    }
  });

  it('is antisymmetric on arbitrary well-formed versions', () => {
    const version = fc.stringMatching(/^[0-9]{1,3}(\.[0-9a-z~+]{1,4}){0,3}(-[0-9a-z.~+]{1,5})?$/);
    fc.assert(
      fc.property(version, version, (a, b) => {
        // Sum rather than negate: sign() of an equal pair is 0, and -0 is not 0 to Object.is.
        expect(sign(compareDebianVersions(a, b)) + sign(compareDebianVersions(b, a))).toBe(0);
        expect(sign(compareRpmVersions(a, b)) + sign(compareRpmVersions(b, a))).toBe(0);
      }),
    );
  });

  it('treats alternatives as "any of them reached"', () => {
    expect(satisfiesFixedVersions('deb', '3.0.11-1~deb12u2', ['1.1.1n-0+deb11u5', '3.0.11-1~deb12u2'])).toBe(
      true,
    );
    expect(satisfiesFixedVersions('deb', '1.1.1n-0+deb11u4', ['1.1.1n-0+deb11u5', '3.0.11-1~deb12u2'])).toBe(
      false,
    );
    expect(satisfiesFixedVersions('rpm', '1:3.0.7-25.el9_3', [])).toBe(true);
  });
});
