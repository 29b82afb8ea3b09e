// The normalized shape every scanner parser produces: one Finding = one scanner saying
// "weakness W is on asset A" in one scan. It is the contract of `ctem parse` (NDJSON, one per line)
// and the input of ingest. Parsers fill what their format carries and leave the rest undefined.

export type AssetKind = 'host' | 'image' | 'cloud' | 'application' | 'repository';

export interface AssetRef {
  kind: AssetKind;
  /** Short host name, lower-case (e.g. "web-01"). */
  hostname?: string;
  /** Fully qualified name, lower-case (e.g. "web-01.example.com"). */
  fqdn?: string;
  /** IPv4/IPv6 addresses in canonical text form. */
  ips?: string[];
  /** MAC address, upper-case, colon separated. */
  mac?: string;
  os?: string;
  /** Container image: repository without tag (e.g. "docker.io/library/nginx"). */
  imageRepo?: string;
  imageTag?: string;
  /** "sha256:…" */
  imageDigest?: string;
  /** Cloud resource id (ARN, Azure resource id, GCP self link…). */
  cloudId?: string;
  /** Application base URL or repository path. */
  url?: string;
  /** Scanner-reported tags/labels (e.g. Kubernetes namespace). */
  tags?: string[];
}

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info' | 'unknown';

export interface CvssRef {
  version: '2.0' | '3.0' | '3.1' | '4.0';
  /** The vector as reported (prefix included for v3/v4: "CVSS:3.1/AV:N/…"). */
  vector?: string;
  /** Base score as reported by the scanner (not recomputed here). */
  score?: number;
  /** Who produced it when the report says (e.g. "nvd", "redhat", "ghsa"). */
  source?: string;
}

export interface PackageRef {
  name: string;
  version?: string;
  /** Lowest version that fixes the weakness, when known. Several alternatives joined by ", ". */
  fixedVersion?: string;
  /** Package ecosystem/type as the scanner names it: "deb", "rpm", "npm", "pypi", "jar"… */
  type?: string;
  /** Path of the file/lock that brought the package in. */
  path?: string;
  purl?: string;
}

export interface ServiceRef {
  port: number;
  protocol: 'tcp' | 'udp' | 'sctp' | 'icmp' | 'other';
  /** Service name (e.g. "ssh", "http"). */
  name?: string;
  product?: string;
  version?: string;
}

export interface Finding {
  /** Scanner family that produced the report: "trivy", "grype", "nessus", "openvas", "nmap", "qualys", "sarif". */
  scanner: string;
  /** Scanner's own id for the scan when the report has one; else derived from file hash by ingest. */
  scanId?: string;
  /** ISO-8601 time the scan ran (report time), when the report says. */
  scanTime?: string;
  asset: AssetRef;
  /**
   * The weakness key: a CVE id ("CVE-2021-44228") when there is one, else the scanner's rule id
   * prefixed by scanner ("nessus:19506", "trivy:AVD-KSV-0001", "sarif:bash/SC2086", "nmap:open-port").
   */
  weaknessKey: string;
  /** Other ids for the same weakness (GHSA, vendor advisories, other CVEs of a multi-CVE plugin). */
  aliases?: string[];
  /** The scanner's rule/plugin id, verbatim. */
  ruleId?: string;
  /** Finding category, for filtering. */
  kind: 'vulnerability' | 'misconfiguration' | 'secret' | 'open-port' | 'code' | 'other';
  title: string;
  description?: string;
  solution?: string;
  severity: Severity;
  /** The severity string as the scanner wrote it. */
  severityReported?: string;
  cvss?: CvssRef[];
  epss?: { probability: number; percentile?: number };
  package?: PackageRef;
  service?: ServiceRef;
  /** Source location for code findings. */
  location?: { path: string; startLine?: number; endLine?: number };
  cwe?: string[];
  references?: string[];
  /** What the scanner showed as proof (plugin output, matched version…), bounded in size by the parser. */
  evidence?: string;
  /** CPE names of the affected product as the scanner reported them ("cpe:/a:php:php:5.1.6", "cpe:2.3:…"). */
  cpe?: string[];
  /** The scanner says a public exploit exists (Nessus exploit_available, vulners is_exploit, Qualys exploitability). */
  exploitAvailable?: boolean;
}

/** Where a parser failure happened, for one-sentence errors that name file, line and column. */
export class InputError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    const where = [
      file,
      line !== undefined ? `line ${line}` : undefined,
      column !== undefined ? `column ${column}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    super(where ? `${where}: ${message}` : message);
    this.name = 'InputError';
  }
}
