// SSH host key pinning: a host is trusted only when the key it presents is one pinned for it, in an
// OpenSSH known_hosts file (plain, wildcard or hashed host entries; @revoked honoured) or as a
// configured "SHA256:…" fingerprint. There is no trust-on-first-use: an unknown host is refused like
// a changed one, each with its own explanation.
import { createHash, createHmac } from 'node:crypto';

export interface HostKeyPins {
  /** Text of a known_hosts file, and its name for messages. */
  knownHosts?: { text: string; file: string };
  /** "SHA256:…" fingerprints pinned for this host in the configuration. */
  fingerprints?: string[];
}

export type HostKeyVerdict =
  { trusted: true } | { trusted: false; reason: 'unknown' | 'changed' | 'revoked'; message: string };

/** "SHA256:…" as OpenSSH prints it, from the key blob (the base64 part of a public key line). */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a key blob ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  return len > 0 && len < 64 && keyBlob.length >= 4 + len
    ? keyBlob.subarray(4, 4 + len).toString('latin1')
    : 'unknown';
}

interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  keyBlob: Buffer;
}

function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as KnownHostEntry['marker'];
    const [patterns, keyType, key] = fields;
    if (!patterns || !keyType || !key) continue;
    entries.push({ marker, patterns, keyType, keyBlob: Buffer.from(key, 'base64') });
  }
  return entries;
}

/** The name a host has in known_hosts: "host" on port 22, "[host]:port" elsewhere. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .toLowerCase()
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) {
      if (globMatches(p.slice(1), name)) return false;
    } else if (globMatches(p, name)) matched = true;
  }
  return matched;
}

/** Key types pinned for the host, to offer only those in the key exchange (as OpenSSH does). */
export function pinnedKeyTypes(pins: HostKeyPins, hosts: string[], port: number): string[] {
  if (pins.fingerprints?.length) return [];
  const names = hosts.map((h) => knownHostsName(h, port));
  const types = parseKnownHosts(pins.knownHosts?.text ?? '')
    .filter((e) => !e.marker && names.some((n) => hostMatches(e.patterns, n)))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/**
 * Check the key a host presented. `hosts` are the names it may be pinned under (its inventory name
 * and the address dialled, like OpenSSH's HostKeyAlias); the first one names it in messages.
 */
export function verifyHostKey(
  pins: HostKeyPins,
  hosts: string[],
  port: number,
  presented: Buffer,
): HostKeyVerdict {
  const host = hosts[0] ?? '';
  const names = hosts.map((h) => knownHostsName(h, port));
  const name = names.join(' or ');
  const got = sshFingerprint(presented);
  const gotType = keyTypeOf(presented);
  const entries = parseKnownHosts(pins.knownHosts?.text ?? '').filter((e) =>
    names.some((n) => hostMatches(e.patterns, n)),
  );
  if (entries.some((e) => e.marker === '@revoked' && e.keyBlob.equals(presented)))
    return {
      trusted: false,
      reason: 'revoked',
      message: `the host key of ${host}:${port} (${gotType} ${got}) is marked @revoked in ${pins.knownHosts?.file}; refusing to connect`,
    };
  const pinned = [
    ...entries.filter((e) => !e.marker).map((e) => sshFingerprint(e.keyBlob)),
    ...(pins.fingerprints ?? []),
  ];
  if (pinned.includes(got)) return { trusted: true };
  const where = [pins.knownHosts?.file, pins.fingerprints?.length ? 'the configured hostKeys' : undefined]
    .filter(Boolean)
    .join(' and ');
  if (pinned.length === 0)
    return {
      trusted: false,
      reason: 'unknown',
      message:
        `no host key is pinned for ${name} (it presented ${gotType} ${got}); refusing to connect to an unverified host. ` +
        `Check that fingerprint out of band, then add the key to ${where || 'a known_hosts file'} (ssh-keyscan -p ${port} ${host})`,
    };
  return {
    trusted: false,
    reason: 'changed',
    message:
      `the host key of ${host}:${port} has CHANGED: it presented ${gotType} ${got} but ${where} pins ${pinned.join(', ')}; ` +
      'refusing to connect (someone may be intercepting the connection; if the host was legitimately rebuilt, verify the new key out of band and update the pin)',
  };
}
