import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
// The SSH package check judges "installed ≥ fixed" with domain/packages.ts (shared with patching);
// these cases pin that ordering to dpkg's and rpm's own, including against the real dpkg binary.
import { compareDebianVersions, compareRpmVersions, parsePackageVersion } from '../../domain/packages.ts';
import { meetsFixedVersion } from '../../domain/fixedVersion.ts';

const rpmvercmp = (a: string, b: string) => compareRpmVersions(a, b);
const isDebianVersion = (v: string) => {
  try {
    parsePackageVersion('apt', v);
    return true;
  } catch {
    return false;
  }
};
const isRpmVersion = (v: string) => {
  try {
    parsePackageVersion('dnf', v);
    return true;
  } catch {
    return false;
  }
};

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('Debian version ordering (dpkg --compare-versions)', () => {
  // [a, b, expected sign of compare(a, b)] — cases from dpkg's own test suite and Debian policy.
  const cases: [string, string, number][] = [
    ['1.0', '1.0', 0],
    ['1.0', '1.0-0', 0],
    ['1.0-1', '1.0-2', -1],
    ['1.2.3', '1.2.10', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['~~', '~~a', -1],
    ['~~a', '~', -1],
    ['~', '', -1],
    ['1.0', '1.0+b1', -1],
    ['1.0', '1.0.1', -1],
    ['1.0a', '1.0', 1],
    ['1:0.9', '2.0', 1],
    ['0:2.0', '2.0', 0],
    ['2.30-1ubuntu1', '2.30-1', 1],
    ['3.0.2-0ubuntu1.10', '3.0.2-0ubuntu1.12', -1],
    ['1:9.2p1-2+deb12u3', '1:9.2p1-2+deb12u2', 1],
    ['7.6p1-4', '7.6p1-4ubuntu0.3', -1],
    ['1.001', '1.1', 0],
    ['2.0-1', '2.0-1~bpo1', 1],
  ];
  it.each(cases)('%s vs %s → %i', (a, b, expected) => {
    expect(sign(compareDebianVersions(a, b))).toBe(expected);
    expect(sign(compareDebianVersions(b, a))).toBe(expected === 0 ? 0 : -expected);
  });

  it('is a consistent order on arbitrary versions (antisymmetric, reflexive)', () => {
    const part = fc.stringMatching(/^[0-9][0-9a-z.+~]{0,6}$/);
    fc.assert(
      fc.property(part, part, (a, b) => {
        expect(compareDebianVersions(a, a)).toBe(0);
        expect(sign(compareDebianVersions(a, b))).toBe(0 - sign(compareDebianVersions(b, a)));
      }),
    );
  });

  it.skipIf(!existsSync('/usr/bin/dpkg'))('agrees with the real dpkg on generated versions', () => {
    const version = fc
      .tuple(
        fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
        fc.stringMatching(/^[0-9][0-9a-z.+~]{0,5}$/),
        fc.option(fc.stringMatching(/^[0-9a-z][0-9a-z.+~]{0,4}$/), { nil: undefined }),
      )
      .map(([e, up, rev]) => `${e !== undefined ? `${e}:` : ''}${up}${rev !== undefined ? `-${rev}` : ''}`);
    fc.assert(
      fc.property(version, version, (a, b) => {
        const lt = spawnSync('dpkg', ['--compare-versions', a, 'lt', b]).status === 0;
        const eq = spawnSync('dpkg', ['--compare-versions', a, 'eq', b]).status === 0;
        expect(sign(compareDebianVersions(a, b))).toBe(lt ? -1 : eq ? 0 : 1);
      }),
      { numRuns: 150 },
    );
  });

  it('recognizes well-formed versions only', () => {
    expect(isDebianVersion('1:2.3.4-1+deb12u1')).toBe(true);
    expect(isDebianVersion('3.0.11-1~deb12u2')).toBe(true);
    expect(isDebianVersion('a1.0')).toBe(false);
    expect(isDebianVersion('1.0; rm -rf /')).toBe(false);
  });
});

describe('RPM version ordering (rpmvercmp)', () => {
  // Cases from rpm's tests/rpmvercmp.at.
  const cases: [string, string, number][] = [
    ['1.0', '1.0', 0],
    ['1.0', '2.0', -1],
    ['2.0.1', '2.0', 1],
    ['2.0.1a', '2.0.1', 1],
    ['5.5p1', '5.5p2', -1],
    ['5.5p10', '5.5p1', 1],
    ['10xyz', '10.1xyz', -1],
    ['xyz10', 'xyz10.1', -1],
    ['xyz.4', '8', -1],
    ['2a', '2.0', -1],
    ['1.0', '1.0.0', -1],
    ['1b.fc17', '1.fc17', -1],
    ['1.0010', '1.9', 1],
    ['1.05', '1.5', 0],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~rc1~git123', '1.0~rc1', -1],
    ['1.0^', '1.0', 1],
    ['1.0^git1', '1.01', -1],
    ['1.0^20160101', '1.0', 1],
    ['1.0^20160101^git1', '1.0^20160101', 1],
    ['1.0~rc1^git1', '1.0~rc1', 1],
    ['1.0^git1~pre', '1.0^git1', -1],
  ];
  it.each(cases)('%s vs %s → %i', (a, b, expected) => {
    expect(sign(rpmvercmp(a, b))).toBe(expected);
    expect(sign(rpmvercmp(b, a))).toBe(expected === 0 ? 0 : -expected);
  });

  it('compares epoch, then version, then release only when both have one', () => {
    expect(sign(compareRpmVersions('1:1.0-1', '2.0-1'))).toBe(1);
    expect(sign(compareRpmVersions('3.0.7-27.el9', '3.0.7-25.el9'))).toBe(1);
    expect(compareRpmVersions('3.0.7-27.el9', '3.0.7')).toBe(0);
    expect(sign(compareRpmVersions('3.0.1-43.el9_0', '3.0.7'))).toBe(-1);
    expect(isRpmVersion('1:3.0.7-27.el9')).toBe(true);
    expect(isRpmVersion('3.0.7 && reboot')).toBe(false);
  });
});

describe('meetsFixedVersion', () => {
  it('is met at or above the fixed version, not below', () => {
    expect(meetsFixedVersion('deb', '3.0.11-1~deb12u2', '3.0.11-1~deb12u2')).toBe(true);
    expect(meetsFixedVersion('deb', '3.0.11-1~deb12u3', '3.0.11-1~deb12u2')).toBe(true);
    expect(meetsFixedVersion('deb', '3.0.11-1~deb12u1', '3.0.11-1~deb12u2')).toBe(false);
    expect(meetsFixedVersion('rpm', '3.0.7-27.el9', '3.0.7-25.el9')).toBe(true);
  });

  it('judges a fix listed per branch against the installed branch', () => {
    expect(meetsFixedVersion('deb', '1.1.1w-0+deb11u1', '1.1.1w, 3.0.7')).toBe(true);
    expect(meetsFixedVersion('deb', '3.0.5-1', '1.1.1w, 3.0.7')).toBe(false);
    expect(meetsFixedVersion('deb', '3.0.8-1', '1.1.1w, 3.0.7')).toBe(true);
    expect(meetsFixedVersion('deb', '1.0', '')).toBe(false);
  });
});
