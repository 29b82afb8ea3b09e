// Campaigns: one remediation in one scope for one owner, across every asset it applies to — what
// people decide on, what tickets are opened for, what patches roll out by and what escalations are
// aggregated by. Pure: a campaign's id follows from the facts of its exposures, so every process puts
// the same exposure in the same campaign.
//
// The remediation, most specific first:
//   - a package upgrade (the scanner named the package): "pkg:<type>:<name>", to the highest fixed
//     version any member needs;
//   - an advisory the scanner named (a Microsoft KB, a Red Hat erratum): "advisory:<id>";
//   - a configuration change (a misconfiguration check): "config:<check>", whatever file it was in;
//   - where no fix is known, the weakness itself: "weakness:<key>".
import { sha256Hex } from './policy/sha256.ts';
import type { CampaignKind } from './ports.ts';
import { compareVersions } from './versions.ts';

export interface CampaignFacts {
  scope: string;
  owner?: string;
  weaknessKey: string;
  /** The finding's kind as the scanner reported it (vulnerability, misconfiguration…). */
  findingKind?: string;
  package?: { name: string; type?: string; fixedVersion?: string };
  /** Text in which a scanner names advisories: the weakness's aliases and its solution. */
  advisoryText?: string;
}

export interface CampaignKey {
  /** "pkg:deb:openssl", "advisory:KB5034441", "config:AVD-DS-0002", "weakness:CVE-2024-1234". */
  key: string;
  kind: CampaignKind;
  /** What is upgraded, applied or fixed, without the version: "openssl", "KB5034441". */
  subject: string;
}

/** Microsoft KBs and Red Hat errata, the advisories a patch tool applies by id. */
const ADVISORY = /\b(KB\d{6,8}|RH[SBE]A-\d{4}:\d{4,5})\b/;

export function campaignKeyOf(f: CampaignFacts): CampaignKey {
  if (f.package?.name) {
    const p = f.package;
    return { key: `pkg:${p.type ?? 'any'}:${p.name}`, kind: 'package', subject: p.name };
  }
  const advisory = f.advisoryText ? ADVISORY.exec(f.advisoryText)?.[1] : undefined;
  if (advisory) return { key: `advisory:${advisory}`, kind: 'advisory', subject: advisory };
  if (f.findingKind === 'misconfiguration') {
    // The same check in another file or resource is the same change.
    const check = f.weaknessKey.replace(/@.*$/, '');
    return { key: `config:${check}`, kind: 'config', subject: check };
  }
  return { key: `weakness:${f.weaknessKey}`, kind: 'weakness', subject: f.weaknessKey };
}

/**
 * "cmp:<scope>:<owner>:<12 hex of the installation and the key>": readable, stable, short enough for
 * an external ticket key. The installation (its database's id) keeps two installations that share a
 * Temporal namespace from addressing each other's campaign workflows.
 */
export function campaignId(scope: string, owner: string | undefined, key: string, installation = ''): string {
  return `cmp:${scope}:${owner ?? 'unowned'}:${sha256Hex(installation ? `${installation}\n${key}` : key).slice(0, 12)}`;
}

/** What a person does, in words, for the campaign's members: "Upgrade openssl to 3.0.14 or later on 120 assets". */
export function campaignAction(
  key: CampaignKey,
  members: { assetName: string; fixedVersion?: string; weaknessKey?: string }[],
): string {
  const assets = [...new Set(members.map((m) => m.assetName))];
  const where = assets.length === 1 ? `on ${assets[0]}` : `on ${assets.length} assets`;
  switch (key.kind) {
    case 'package': {
      const highest = members
        .map((m) => m.fixedVersion)
        .filter((v): v is string => !!v)
        .sort(compareVersions)
        .at(-1);
      return `Upgrade ${key.subject}${highest ? ` to ${highest} or later` : ' to a fixed version'} ${where}`;
    }
    case 'advisory':
      return `Apply ${key.subject} ${where}`;
    case 'config':
      return `Fix the configuration flagged by ${key.subject} ${where}`;
    case 'weakness':
      return `Remediate ${key.subject} ${where}`;
  }
}

/** The workflow holding a campaign's exposures (a large campaign is split: "~2", "~3"…). */
export function campaignWorkflowId(campaign: string, shard = 1): string {
  return shard === 1 ? `campaign-${campaign}` : `campaign-${campaign}~${shard}`;
}
