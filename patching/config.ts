// The patching sections of ctem.yaml, validated here (the foundation keeps them free-form):
//
//   integrations:
//     ssh:        { user, privateKey | agent, knownHosts | hostKeys, sudo, hosts: {name: {address, port}} }
//     satellite:  { url, username, password (password or personal access token), caFile, organizationId }
//     wsus:       { server, ssh: {…same as ssh…}, updateServer: {name, port, useSsl} }
//   scopes[].patch: { executor: ssh | satellite | wsus, autoApprove, concurrency, canary, targetGroup }
//
// scopes[].patch.executor picks the implementation in the lifecycle's integration registry
// (lifecycle/integrations.ts); the other fields are the rollout's safety rules.
//
// Errors name the field (integrations.ssh.knownHosts, scopes[2].patch.concurrency) and what to do.
import { z } from 'zod';
import { duration, durationMs, secretRef, type Config, type Scope } from '../domain/config.ts';
import type { MaintenanceWindow } from '../domain/maintenance.ts';
import { roleNames } from '../domain/config.ts';

export class PatchConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchConfigError';
  }
}

const fingerprint = z
  .string()
  .regex(
    /^SHA256:[A-Za-z0-9+/]{43}$/,
    'must be an OpenSSH SHA256 fingerprint such as SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
  );
const userName = z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'must be a login name');
const hostName = z.string().regex(/^[A-Za-z0-9.:_-]+$/, 'must be a host name or address');

const sshConnectionShape = z.object({
  user: userName,
  port: z.number().int().min(1).max(65535).default(22),
  /** A private key (OpenSSH or PEM), by reference: file:/etc/ctem/id_ed25519 or env:NAME. */
  privateKey: secretRef.optional(),
  passphrase: secretRef.optional(),
  /** An ssh-agent socket: env:SSH_AUTH_SOCK or a path. */
  agent: z.string().min(1).optional(),
  /** An OpenSSH known_hosts file (relative to ctem.yaml). */
  knownHosts: z.string().min(1).optional(),
  /** Fingerprints pinned per host name, in addition to known_hosts. */
  hostKeys: z.record(z.string(), z.array(fingerprint).min(1)).default({}),
  connectTimeout: duration.default('20s'),
  /** Run package managers through `sudo -n` (the login is not root). */
  sudo: z.boolean().default(false),
  /** How to reach inventory hosts whose name is not their address (or that listen elsewhere). */
  hosts: z
    .record(
      z.string(),
      z
        .object({
          address: hostName.optional(),
          port: z.number().int().min(1).max(65535).optional(),
          user: userName.optional(),
        })
        .strict(),
    )
    .default({}),
});

function authAndPinsAreSet(v: z.infer<typeof sshConnectionShape>, ctx: z.RefinementCtx): void {
  if (!v.privateKey === !v.agent)
    ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'set exactly one of privateKey or agent' });
  if (!v.knownHosts && Object.keys(v.hostKeys).length === 0)
    ctx.addIssue({
      code: 'custom',
      path: ['knownHosts'],
      message:
        'host keys must be pinned: set knownHosts (a known_hosts file) or hostKeys (fingerprints per host)',
    });
}

const sshConnectionSchema = sshConnectionShape.strict().superRefine(authAndPinsAreSet);

export const sshIntegrationSchema = sshConnectionShape
  .extend({
    commandTimeout: duration.default('30m'),
    /** Debian/Ubuntu's flag file; another path only for images that move it. */
    rebootRequiredFile: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]+$/, 'must be an absolute path')
      .default('/var/run/reboot-required'),
  })
  .strict()
  .superRefine(authAndPinsAreSet);

export const satelliteIntegrationSchema = z
  .object({
    url: z
      .string()
      .url()
      .regex(/^https?:\/\//, 'must be an http(s) URL'),
    username: z.string().min(1),
    /** The password or a personal access token (Foreman takes either as the Basic password). */
    password: secretRef,
    /** The Satellite CA (katello-server-ca.crt) when it is not in the system store. */
    caFile: z.string().min(1).optional(),
    organizationId: z.number().int().positive().optional(),
    /** Remote-execution feature that installs errata by search query (Katello's own by default). */
    feature: z
      .string()
      .regex(/^[a-z0-9_]+$/)
      .default('katello_errata_install_by_search'),
    pollInterval: duration.default('10s'),
    jobTimeout: duration.default('2h'),
    requestTimeout: duration.default('60s'),
  })
  .strict();

export const wsusIntegrationSchema = z
  .object({
    /** The WSUS server, reached with OpenSSH for Windows. */
    server: hostName,
    ssh: sshConnectionSchema,
    /** Arguments of Get-WsusServer; absent = the local server on its default port. */
    updateServer: z
      .object({
        name: hostName,
        port: z.number().int().min(1).max(65535).default(8530),
        useSsl: z.boolean().default(false),
      })
      .strict()
      .optional(),
    commandTimeout: duration.default('10m'),
  })
  .strict();

export const scopePatchSchema = z
  .object({
    /** A name registered in the lifecycle's integration registry: ssh, satellite, wsus (or demo). */
    executor: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'must name a patch executor such as ssh, satellite or wsus'),
    /** Apply the plan without a person's approval (development scopes). */
    autoApprove: z.boolean().default(false),
    /** Hosts of this scope patched at the same time, across all rollouts. */
    concurrency: z.number().int().min(1).max(1000).default(1),
    /** Hosts patched first, alone, before the rest of a multi-host rollout. */
    canary: z.number().int().min(0).max(100).default(1),
    /** WSUS computer target group the scope's approvals go to. */
    targetGroup: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,127}$/,
        'must be a WSUS group name (letters, digits, space _ . -)',
      )
      .optional(),
    /** How long one host's apply may hold its concurrency slot. */
    hostTimeout: duration.default('2h'),
    /** How long a plan waits for an approval before it is escalated (again after each period). */
    approvalTimeout: duration.default('24h'),
  })
  .strict();

export type SshIntegration = z.infer<typeof sshIntegrationSchema>;
export type SshConnectionSettings = z.infer<typeof sshConnectionSchema>;
export type SatelliteIntegration = z.infer<typeof satelliteIntegrationSchema>;
export type WsusIntegration = z.infer<typeof wsusIntegrationSchema>;
export type ScopePatchSettings = z.infer<typeof scopePatchSchema>;

function parseSection<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<S>;
  const problems = result.error.issues.map((issue) => {
    const field = [where, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
      .join('')
      .replace(/\.\[/g, '[');
    return `ctem.yaml ${field}: ${issue.message}`;
  });
  throw new PatchConfigError(problems.join('\n'));
}

export function sshIntegration(config: Config): SshIntegration {
  if (config.integrations.ssh === undefined)
    throw new PatchConfigError('ctem.yaml integrations.ssh: missing; add it to patch hosts over SSH');
  return parseSection(sshIntegrationSchema, config.integrations.ssh, 'integrations.ssh');
}

export function satelliteIntegration(config: Config): SatelliteIntegration {
  if (config.integrations.satellite === undefined)
    throw new PatchConfigError('ctem.yaml integrations.satellite: missing; add url, username and password');
  return parseSection(satelliteIntegrationSchema, config.integrations.satellite, 'integrations.satellite');
}

export function wsusIntegration(config: Config): WsusIntegration {
  if (config.integrations.wsus === undefined)
    throw new PatchConfigError('ctem.yaml integrations.wsus: missing; add server and ssh');
  return parseSection(wsusIntegrationSchema, config.integrations.wsus, 'integrations.wsus');
}

function findScope(config: Config, scopeName: string): { scope: Scope; index: number } {
  const index = config.scopes.findIndex((s) => s.name === scopeName);
  if (index < 0) throw new PatchConfigError(`ctem.yaml scopes: no scope named "${scopeName}"`);
  return { scope: config.scopes[index]!, index };
}

export function scopePatchSettings(config: Config, scopeName: string): ScopePatchSettings {
  const { scope, index } = findScope(config, scopeName);
  if (!scope.patch)
    throw new PatchConfigError(
      `ctem.yaml scopes[${index}].patch: scope "${scopeName}" has no patch executor; add patch.executor (ssh, satellite or wsus)`,
    );
  const settings = parseSection(scopePatchSchema, scope.patch, `scopes[${index}].patch`);
  if (settings.executor === 'wsus' && !settings.targetGroup)
    throw new PatchConfigError(
      `ctem.yaml scopes[${index}].patch.targetGroup: required for the wsus executor`,
    );
  return settings;
}

/** What the patch workflow needs to know about a scope, in plain data (workflow payload). */
export interface PatchRolloutPolicy {
  scope: string;
  executor: string;
  autoApprove: boolean;
  concurrency: number;
  canary: number;
  hostTimeoutMs: number;
  /** An approval request unanswered this long is escalated to the security lead, CISO and channel. */
  approvalTimeoutMs: number;
  /** Person ids who may approve (the scope's approvers, security leads and CISO). */
  approvers: string[];
  maintenanceWindow?: MaintenanceWindow;
}

export function patchRolloutPolicy(config: Config, scopeName: string): PatchRolloutPolicy {
  const { scope, index } = findScope(config, scopeName);
  const settings = scopePatchSettings(config, scopeName);
  const approvers = [...new Set(roleNames.filter((r) => r !== 'owner').flatMap((r) => scope.roles[r]))];
  if (!settings.autoApprove && approvers.length === 0)
    throw new PatchConfigError(
      `ctem.yaml scopes[${index}].roles.approver: scope "${scopeName}" needs an approver (or patch.autoApprove: true) before anything is patched`,
    );
  return {
    scope: scopeName,
    executor: settings.executor,
    autoApprove: settings.autoApprove,
    concurrency: settings.concurrency,
    canary: settings.canary,
    hostTimeoutMs: durationMs(settings.hostTimeout),
    approvalTimeoutMs: durationMs(settings.approvalTimeout),
    approvers,
    maintenanceWindow: scope.maintenanceWindow,
  };
}
