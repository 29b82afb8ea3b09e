// The exposure health score: one number from 0 to 100 per scope and overall, in the spirit of
// Nanitor's Health Score, that a CISO can follow week by week. Pure: the digest computes the inputs
// in SQL and both weeks' scores here, so a movement is always explained by the inputs that moved.
//
// Formula (also in the README):
//
//   load      = Σ weight(p) × open(p)  +  Σ weight(p) × overdue(p)  +  5 × kevOpen
//               weight: Act 10, Attend 4, Track* 1, Track 0.25  (an overdue exposure counts twice)
//   perAsset  = load / max(assets, 1)
//   exposure  = 100 / (1 + perAsset / 2)          2 weighted points per asset halve the score
//   coverage  = assetsScannedWithinCadence / assets (1 when there are no assets)
//   health    = round(exposure × (0.5 + 0.5 × coverage))
//
// Why this shape: dividing by the asset count lets a 10-host lab and a 50,000-host estate be read on
// the same scale; the hyperbola never reaches 0, so fixing exposures always moves the score; and an
// unscanned estate cannot look healthy, because what was not looked at is unknown, not clean.

export const priorities = ['act', 'attend', 'track*', 'track'] as const;
export type PriorityKey = (typeof priorities)[number];
export type PriorityCounts = Record<PriorityKey, number>;

export const priorityLabels: Record<PriorityKey, string> = {
  act: 'Act',
  attend: 'Attend',
  'track*': 'Track*',
  track: 'Track',
};

const weight: Record<PriorityKey, number> = { act: 10, attend: 4, 'track*': 1, track: 0.25 };
const KEV_WEIGHT = 5;
const HALVING_LOAD_PER_ASSET = 2;

export interface HealthInputs {
  /** Assets in the inventory (not retired). */
  assets: number;
  /** Of those, assets scanned within their scope's cadence. */
  assetsCovered: number;
  open: PriorityCounts;
  /** Open and past their SLA deadline (a subset of open). */
  overdue: PriorityCounts;
  /** Open exposures whose weakness is in CISA KEV. */
  kevOpen: number;
}

/** What flowed in and out during the week, to say why open counts moved. */
export interface HealthFlow {
  fixed: PriorityCounts;
  opened: PriorityCounts;
}

export interface HealthMovement {
  /** Whole points; the movements of one comparison add up to the score's change. */
  delta: number;
  text: string;
}

export function emptyCounts(): PriorityCounts {
  return { act: 0, attend: 0, 'track*': 0, track: 0 };
}

function exactScore(i: HealthInputs): number {
  let load = KEV_WEIGHT * i.kevOpen;
  for (const p of priorities) load += weight[p] * (i.open[p] + i.overdue[p]);
  const perAsset = load / Math.max(i.assets, 1);
  const exposure = 100 / (1 + perAsset / HALVING_LOAD_PER_ASSET);
  const coverage = i.assets > 0 ? Math.min(1, i.assetsCovered / i.assets) : 1;
  return exposure * (0.5 + 0.5 * coverage);
}

export function healthScore(i: HealthInputs): number {
  return Math.round(exactScore(i));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Why the score moved from `before` to `after`: each input is moved from its old to its new value in
 * a fixed order and the score change of each step is that input's share. Shares are rounded so
 * they add up to the change of the rounded scores; inputs that did not move are left out.
 */
export function explainHealthMovement(
  before: HealthInputs,
  after: HealthInputs,
  flow?: HealthFlow,
): HealthMovement[] {
  type Step = { apply: (i: HealthInputs) => HealthInputs; text: string | undefined };
  const steps: Step[] = [];
  const coverageBefore = before.assets ? before.assetsCovered / before.assets : 1;
  const coverageAfter = after.assets ? after.assetsCovered / after.assets : 1;
  const pct = (c: number) => `${Math.round(c * 100)}%`;
  // A changed inventory moves its coverage with it: one step, so a new, scanned asset is not told
  // as "−50 for the asset, +50 for its scan".
  if (before.assets !== after.assets)
    steps.push({
      apply: (i) => ({ ...i, assets: after.assets, assetsCovered: after.assetsCovered }),
      text: `${plural(after.assets, 'asset')} in the inventory (was ${before.assets})${coverageBefore !== coverageAfter ? `, scan coverage ${pct(coverageBefore)} → ${pct(coverageAfter)}` : ''}`,
    });
  else if (before.assetsCovered !== after.assetsCovered)
    steps.push({
      apply: (i) => ({ ...i, assetsCovered: after.assetsCovered }),
      text: `scan coverage ${pct(coverageBefore)} → ${pct(coverageAfter)}`,
    });
  for (const p of priorities) {
    if (before.open[p] === after.open[p]) continue;
    const label = priorityLabels[p];
    const why: string[] = [];
    if (flow && flow.fixed[p] > 0) why.push(`${flow.fixed[p]} ${label} verified fixed`);
    if (flow && flow.opened[p] > 0) why.push(`${flow.opened[p]} new`);
    steps.push({
      apply: (i) => ({ ...i, open: { ...i.open, [p]: after.open[p] } }),
      text: `${label} exposures open ${before.open[p]} → ${after.open[p]}${why.length ? ` (${why.join(', ')})` : ''}`,
    });
  }
  const overdueBefore = priorities.reduce((n, p) => n + before.overdue[p], 0);
  const overdueAfter = priorities.reduce((n, p) => n + after.overdue[p], 0);
  if (priorities.some((p) => before.overdue[p] !== after.overdue[p]))
    steps.push({
      apply: (i) => ({ ...i, overdue: { ...after.overdue } }),
      text: `exposures past their SLA ${overdueBefore} → ${overdueAfter}`,
    });
  if (before.kevOpen !== after.kevOpen)
    steps.push({
      apply: (i) => ({ ...i, kevOpen: after.kevOpen }),
      text: `known-exploited (KEV) exposures open ${before.kevOpen} → ${after.kevOpen}`,
    });

  let current: HealthInputs = { ...before, open: { ...before.open }, overdue: { ...before.overdue } };
  let score = exactScore(current);
  const raw: { share: number; text: string }[] = [];
  for (const s of steps) {
    current = s.apply(current);
    const next = exactScore(current);
    raw.push({ share: next - score, text: s.text ?? '' });
    score = next;
  }
  // Largest-remainder rounding, so the shares add up to the change a reader sees.
  const total = healthScore(after) - healthScore(before);
  const floors = raw.map((r) => Math.trunc(r.share));
  let left = total - floors.reduce((a, b) => a + b, 0);
  const order = raw
    .map((r, i) => ({ i, rest: r.share - floors[i]! }))
    .sort((a, b) => Math.abs(b.rest) - Math.abs(a.rest));
  for (const o of order) {
    if (left === 0) break;
    const step = Math.sign(left);
    if (Math.sign(o.rest) === step || o.rest === 0) {
      floors[o.i]! += step;
      left -= step;
    }
  }
  if (left !== 0 && raw.length > 0) floors[0]! += left;
  return raw
    .map((r, i) => ({ delta: floors[i]!, text: r.text, share: r.share }))
    .filter((m) => Math.abs(m.share) >= 0.05 || m.delta !== 0)
    .sort((a, b) => Math.abs(b.share) - Math.abs(a.share))
    .map(({ delta, text }) => ({ delta, text }));
}

/** "+4: Act exposures open 15 → 3 (12 Act verified fixed)". */
export function formatMovement(m: HealthMovement): string {
  return `${m.delta > 0 ? '+' : m.delta < 0 ? '−' : '±'}${Math.abs(m.delta)}: ${m.text}`;
}
