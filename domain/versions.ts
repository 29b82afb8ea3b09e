// Version strings as packages name them, ordered well enough to pick the highest fixed version a
// campaign needs. Pure.
/**
 * Order version strings by their numeric and alphabetic runs ("1.10" after "1.9", "3.0.7" before
 * "3.0.8-r1"). Good enough to pick the highest of a few fixed versions; not a package manager's rules.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => v.split(/(\d+)/).filter((s) => s !== '');
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
