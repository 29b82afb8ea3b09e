// A `powershell` shim for the sshd fixture that stands in for a WSUS server: it insists on the exact
// command line (-NoProfile -NonInteractive -EncodedCommand <base64>), decodes the UTF-16LE script,
// keeps it for the test to read, checks that the values in it are well-formed single-quoted
// literals, and answers like the UpdateServices script would (ConvertTo-Json -Compress) from a
// catalog in $CTEM_SHIM_STATE/wsus.json, recording approvals there.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ShimSpec, Sshd } from '../support/sshd.ts';

export interface FakeWsusState {
  server: string;
  groups: string[];
  /** Computer name → its target groups. */
  computers: Record<string, string[]>;
  updates: { kb: string; updateId: string; title: string; superseded?: boolean; declined?: boolean }[];
  /** updateId → groups it is approved for (Install). */
  approvals: Record<string, string[]>;
}

export async function setWsusState(sshd: Sshd, state: FakeWsusState): Promise<void> {
  await writeFile(path.join(sshd.stateDir, 'wsus.json'), JSON.stringify(state));
  await writeFile(path.join(sshd.stateDir, 'scripts.jsonl'), '');
}

export async function wsusState(sshd: Sshd): Promise<FakeWsusState> {
  return JSON.parse(await readFile(path.join(sshd.stateDir, 'wsus.json'), 'utf8')) as FakeWsusState;
}

/** The decoded scripts the shim received, oldest first. */
export async function receivedScripts(sshd: Sshd): Promise<string[]> {
  const text = await readFile(path.join(sshd.stateDir, 'scripts.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l)
    .map((l) => (JSON.parse(l) as { script: string }).script);
}

const powershell = `
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
const dir = process.env.CTEM_SHIM_STATE;
const args = process.argv.slice(2);
const fail = (message) => {
  process.stderr.write(message + '\\n    + CategoryInfo          : OperationStopped: (:) [], RuntimeException\\n    + FullyQualifiedErrorId : ' + message + '\\n');
  process.exit(1);
};
if (args.length !== 4 || args[0] !== '-NoProfile' || args[1] !== '-NonInteractive' || args[2] !== '-EncodedCommand' || !/^[A-Za-z0-9+/]+=*$/.test(args[3]))
  fail('powershell shim: expected -NoProfile -NonInteractive -EncodedCommand <base64>, got ' + JSON.stringify(args));
const script = Buffer.from(args[3], 'base64').toString('utf16le');
appendFileSync(dir + '/scripts.jsonl', JSON.stringify({ script }) + '\\n');
const literal = "'((?:[^']|'')*)'";
const one = (name) => {
  const m = new RegExp('^\\\\$' + name + ' = ' + literal + '$', 'm').exec(script);
  if (!m) fail('powershell shim: the script sets no $' + name + ' literal');
  return m[1].replace(/''/g, "'");
};
const mode = one('mode');
const groupName = one('groupName');
const computerName = one('computerName');
const kbLine = /^\\$kbs = @\\((.*)\\)$/m.exec(script);
if (!kbLine) fail('powershell shim: the script sets no $kbs array');
const kbs = [...kbLine[1].matchAll(new RegExp(literal, 'g'))].map((m) => m[1]);
if (kbs.some((kb) => !/^KB\\d{6,8}$/.test(kb))) fail('powershell shim: a KB literal is malformed: ' + kbLine[1]);
for (const needed of ['Get-WsusServer', 'SearchUpdates($kb)', 'Approve-WsusUpdate -Action Install -TargetGroupName $groupName', 'ConvertTo-Json -Depth 5 -Compress'])
  if (!script.includes(needed)) fail('powershell shim: the script lacks ' + needed);
const state = JSON.parse(readFileSync(dir + '/wsus.json', 'utf8'));
if (!state.groups.includes(groupName)) fail('WSUS has no computer target group named ' + groupName);
const groupsOf = state.computers[computerName];
const results = kbs.map((kb) => ({
  kb,
  updates: state.updates
    .filter((u) => u.kb === kb && !u.declined)
    .map((u) => {
      let approved = (state.approvals[u.updateId] || []).includes(groupName);
      let approvedNow = false;
      if (mode === 'apply' && !approved) {
        state.approvals[u.updateId] = [...(state.approvals[u.updateId] || []), groupName];
        approved = true;
        approvedNow = true;
      }
      return { updateId: u.updateId, title: u.title, superseded: !!u.superseded, approved, approvedNow };
    }),
}));
writeFileSync(dir + '/wsus.json', JSON.stringify(state));
process.stdout.write(JSON.stringify({
  mode, server: state.server, group: groupName, computer: computerName,
  computerKnown: !!groupsOf, computerInGroup: !!groupsOf && groupsOf.includes(groupName), kbs: results,
}) + '\\r\\n');
`;

export const powershellShim: ShimSpec = { js: powershell };
