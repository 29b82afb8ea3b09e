// Stage one report's findings into a temporary table through COPY, as the parser yields them. The
// parser and PostgreSQL work at the same time (the COPY stream's backpressure paces the parser), and
// memory holds only the report's distinct assets and a bounded set of weakness keys already staged.
import { once } from 'node:events';
import { from as copyFrom } from 'pg-copy-streams';
import type { AssetRef, Finding, Severity } from '../domain/finding.ts';
import { identityKey } from '../domain/inventory.ts';
import type { PoolClient } from '../runtime/pool.ts';
import { boundHeap, HEAP_CHECK_EVERY } from './heap.ts';
import { copyArray, copyField, copyJson } from './copyText.ts';

/** Temporary tables live until the transaction ends: a failed ingest leaves nothing anywhere. */
export const STAGE_TABLE_SQL = `
create temp table stage_findings (
  a int not null, k text not null, kind text not null, title text, sev text not null, sev_rep text,
  rank smallint not null, rule text, port int, proto text, svc text, pkg text, pkgver text, fixed text,
  pkgtype text, pkgpath text, loc text, evidence text,
  intel boolean not null, i_aliases text[], i_title text, i_desc text, i_solution text, i_cvss jsonb,
  i_epss real, i_epss_pct real, i_exploit boolean, i_cwe text[], i_again boolean
) on commit drop`;

const COLUMNS =
  'a, k, kind, title, sev, sev_rep, rank, rule, port, proto, svc, pkg, pkgver, fixed, pkgtype, pkgpath, loc, evidence, ' +
  'intel, i_aliases, i_title, i_desc, i_solution, i_cvss, i_epss, i_epss_pct, i_exploit, i_cwe, i_again';

const SEVERITY_RANK: Record<Severity, number> = {
  critical: 5,
  high: 4,
  medium: 3,
  low: 2,
  info: 1,
  unknown: 0,
};

/** Bytes of COPY text buffered before a write: large enough to amortize calls, small enough to stream. */
const WRITE_CHUNK = 256 * 1024;
/**
 * Weakness keys remembered exactly, to send each one's intel once; forgotten in bulk past this into
 * a Bloom filter (ForgottenKeys), which only costs sending a forgotten key's intel again. About 10 MB
 * of heap at the limit, whatever the report's size.
 */
const INTEL_KEYS_REMEMBERED = 100_000;

/**
 * The weakness keys forgotten from the exact set, as a Bloom filter of fixed size (2 MB): "no" is
 * certain, "maybe" is not. Staging asks it whether a key it sends intel for may have been sent
 * before; only a "maybe" makes the intel merge de-duplicate (StagedReport.intelUnique), which it
 * must do when a key really repeats. A false "maybe" costs only that sort, never intel.
 */
export class ForgottenKeys {
  private static readonly BITS = 1 << 24;
  private static readonly PROBES = 7;
  /** Allocated when the first key is forgotten: most reports never forget one. */
  private bits: Uint32Array | undefined;

  add(key: string): void {
    const bits = (this.bits ??= new Uint32Array(ForgottenKeys.BITS / 32));
    this.probe(key, (i) => {
      bits[i >>> 5]! |= 1 << (i & 31);
      return true;
    });
  }

  mightHave(key: string): boolean {
    const bits = this.bits;
    return bits !== undefined && this.probe(key, (i) => (bits[i >>> 5]! & (1 << (i & 31))) !== 0);
  }

  /** Double hashing over two FNV-1a variants; `visit` returning false stops early. */
  private probe(key: string, visit: (bit: number) => boolean): boolean {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    h2 |= 1; // odd, so the probes differ
    for (let k = 0; k < ForgottenKeys.PROBES; k++)
      if (!visit((h1 + Math.imul(k, h2)) & (ForgottenKeys.BITS - 1))) return false;
    return true;
  }
}

/**
 * A copy of a string that shares no memory with the text it was cut from. Parsers hand out strings
 * that V8 keeps as slices of the chunk they were read from: kept for the whole report (an asset's
 * names, a remembered key), each would pin its megabyte chunk in memory — measured at 1.3 GB for a
 * 1.1 GB Nessus report with 20,000 hosts.
 */
function detached(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

export interface StagedReport {
  /** Scanner of the first finding (a report is one scanner's). */
  scanner?: string;
  /** The report's own scan id, when it has one. */
  scanRef?: string;
  findings: number;
  /** Findings whose asset carries nothing to identify it by; not ingested. */
  skipped: number;
  /**
   * Informational findings (kind 'other', severity 'info': a Nessus "None" plugin, an OpenVAS log, a
   * Qualys information-gathered item). They put their asset in the inventory and in the scan's
   * coverage, but are no weakness: no observation, no exposure.
   */
  informational: number;
  /** The report's distinct assets; a staged row's `a` indexes this array. */
  assets: AssetRef[];
  earliest?: Date;
  latest?: Date;
  /** Staging stopped early because shouldStop() said so. */
  stopped: boolean;
  /**
   * Every weakness key's intel was staged once only: no key staged again after it was forgotten
   * (ForgottenKeys says "maybe" for none), so the intel merge need not de-duplicate. Otherwise the
   * rows it said "maybe" for are marked (stage_findings.i_again), and only their keys are.
   */
  intelUnique: boolean;
}

export interface StageOptions {
  /** Polled between findings; true stops staging (e.g. the file turned out to be ingested already). */
  shouldStop?: () => boolean;
  /** Called every `progressEvery` findings. */
  onProgress?: (findings: number) => void;
  progressEvery?: number;
  /** Weakness keys remembered exactly (default INTEL_KEYS_REMEMBERED; tests lower it). */
  intelKeysRemembered?: number;
}

export async function stageFindings(
  client: PoolClient,
  findings: AsyncIterable<Finding>,
  opts: StageOptions = {},
): Promise<StagedReport> {
  await client.query(STAGE_TABLE_SQL);
  const copy = client.query(copyFrom(`copy stage_findings (${COLUMNS}) from stdin`));
  const copyDone = once(copy, 'finish');
  // A COPY error surfaces on the stream; keep it from becoming an unhandled rejection meanwhile.
  copyDone.catch(() => undefined);
  let copyFailed: Error | undefined;
  copy.on('error', (err: Error) => {
    copyFailed = err;
  });

  const report: StagedReport = {
    findings: 0,
    skipped: 0,
    informational: 0,
    assets: [],
    stopped: false,
    intelUnique: true,
  };
  const byObject = new WeakMap<AssetRef, number>();
  const bySignature = new Map<string, number>();
  const identified: boolean[] = [];
  const intelSent = new Set<string>();
  const intelForgotten = new ForgottenKeys();
  let lastTimeText: string | undefined;
  const every = opts.progressEvery ?? 10_000;
  let buffer = '';
  let written = 0;

  const assetIndex = (ref: AssetRef): number => {
    const cached = byObject.get(ref);
    if (cached !== undefined) return cached;
    const signature = JSON.stringify([
      ref.kind,
      ref.fqdn,
      ref.hostname,
      ref.ips,
      ref.mac,
      ref.imageRepo,
      ref.imageTag,
      ref.imageDigest,
      ref.cloudId,
      ref.url,
    ]);
    let index = bySignature.get(signature);
    if (index === undefined) {
      index = report.assets.length;
      report.assets.push(JSON.parse(JSON.stringify(ref)) as AssetRef);
      identified.push(identityKey(ref) !== undefined);
      bySignature.set(signature, index);
    } else {
      // Same identity described again: keep the latest OS and every tag.
      const known = report.assets[index]!;
      if (ref.os && ref.os !== known.os) known.os = detached(ref.os);
      if (ref.tags?.some((t) => !known.tags?.includes(t)))
        known.tags = [...new Set([...(known.tags ?? []), ...ref.tags.map(detached)])];
    }
    byObject.set(ref, index);
    return index;
  };

  try {
    for await (const f of findings) {
      if (opts.shouldStop?.()) {
        report.stopped = true;
        break;
      }
      if (copyFailed) throw copyFailed;
      report.findings++;
      report.scanner ??= detached(f.scanner);
      if (report.scanRef === undefined && f.scanId) report.scanRef = detached(f.scanId);
      if (f.scanTime !== undefined && f.scanTime !== lastTimeText) {
        lastTimeText = f.scanTime;
        const t = new Date(f.scanTime);
        if (!Number.isNaN(t.getTime())) {
          if (!report.earliest || t < report.earliest) report.earliest = t;
          if (!report.latest || t > report.latest) report.latest = t;
        }
      }
      const a = assetIndex(f.asset);
      if (!identified[a]) {
        report.skipped++;
        continue;
      }
      // The asset is now in report.assets, hence resolved and covered; the finding itself stops here.
      if (f.kind === 'other' && f.severity === 'info') {
        report.informational++;
        continue;
      }
      buffer += rowOf(a, f, intelSent) + '\n';
      if (buffer.length >= WRITE_CHUNK) {
        const chunk = buffer;
        buffer = '';
        if (!copy.write(chunk)) await Promise.race([once(copy, 'drain'), copyDone]);
        if ((written += chunk.length) >= HEAP_CHECK_EVERY) {
          written = 0;
          boundHeap();
        }
      }
      if (report.findings % every === 0) opts.onProgress?.(report.findings);
    }
    if (buffer) copy.write(buffer);
    copy.end();
    await copyDone;
  } catch (err) {
    // Abort the COPY (the server discards it) so the connection can roll back cleanly.
    copy.destroy(err instanceof Error ? err : new Error(String(err)));
    await copyDone.catch(() => undefined);
    throw err;
  }
  opts.onProgress?.(report.findings);
  await client.query('analyze stage_findings');
  return report;

  function rowOf(a: number, f: Finding, sent: Set<string>): string {
    const pkg = f.package;
    const svc = f.service;
    const service = svc
      ? [svc.name, [svc.product, svc.version].filter(Boolean).join(' ')].filter(Boolean).join(' ') ||
        undefined
      : undefined;
    const loc = f.location
      ? `${f.location.path}${f.location.startLine !== undefined ? `:${f.location.startLine}` : ''}`
      : undefined;
    const fields = [
      String(a),
      copyField(f.weaknessKey),
      copyField(f.kind),
      copyField(f.title),
      copyField(f.severity),
      copyField(f.severityReported),
      String(SEVERITY_RANK[f.severity] ?? 0),
      copyField(f.ruleId),
      copyField(svc?.port),
      copyField(svc?.protocol),
      copyField(service),
      copyField(pkg?.name),
      copyField(pkg?.version),
      copyField(pkg?.fixedVersion),
      copyField(pkg?.type),
      copyField(pkg?.path),
      copyField(loc),
      copyField(f.evidence),
    ];
    if (sent.has(f.weaknessKey)) {
      fields.push('f', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N');
    } else {
      if (sent.size >= (opts.intelKeysRemembered ?? INTEL_KEYS_REMEMBERED)) {
        for (const key of sent) intelForgotten.add(key);
        sent.clear();
      }
      // Staged again, perhaps: the merge de-duplicates this key's intel rows (and only this key's).
      const again = intelForgotten.mightHave(f.weaknessKey);
      if (again) report.intelUnique = false;
      sent.add(detached(f.weaknessKey));
      fields.push(
        't',
        copyArray(f.aliases),
        copyField(f.title),
        copyField(f.description),
        copyField(f.solution),
        f.cvss && f.cvss.length > 0 ? copyJson(f.cvss) : '\\N',
        copyField(f.epss?.probability),
        copyField(f.epss?.percentile),
        copyField(f.exploitAvailable),
        copyArray(f.cwe),
        again ? 't' : '\\N',
      );
    }
    return fields.join('\t');
  }
}
