// Trivy names one misconfiguration check several ways: "KSV001" (ID), "AVD-KSV-0001" (AVDID), and
// newer releases "KSV-0001". Trivy Operator reports only the short form. The AVD form is the one
// stable across all of them, so it is the weakness key.

export function canonicalCheckId(avdId: string | undefined, id: string | undefined): string | undefined {
  if (avdId !== undefined && /^AVD-/i.test(avdId)) return avdId.toUpperCase();
  const raw = id ?? avdId;
  if (raw === undefined) return undefined;
  const short = /^([A-Za-z]+)-?(\d+)$/.exec(raw);
  return short ? `AVD-${short[1]!.toUpperCase()}-${short[2]!.padStart(4, '0')}` : raw;
}
