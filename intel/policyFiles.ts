// Which policy files exist: the built-in default (policies/default.yaml) and the ones ctem.yaml
// names under `policies:` (name → file, relative to ctem.yaml). Reading files is I/O, so it lives
// here; parsing and deciding stay pure in domain/policy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../domain/config.ts';
import { parsePolicy, type Policy } from '../domain/policy/schema.ts';
import { projectRoot } from '../runtime/paths.ts';

export const BUILTIN_POLICY_FILE = path.join(projectRoot, 'policies', 'default.yaml');

export function readPolicyFile(file: string, shownAs = file): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(
      `${shownAs}: the policy file cannot be read; check the path under policies: in ctem.yaml`,
    );
  }
  return parsePolicy(text, shownAs);
}

/** Resolves policy names (a scope's `policy:`) to validated policies, each file read once. */
export class PolicyCatalog {
  private readonly loaded = new Map<string, Policy>();

  constructor(
    private readonly files: Readonly<Record<string, string>> = {},
    private readonly baseDir = process.cwd(),
  ) {}

  static fromConfig(config: Pick<Config, 'policies'>, baseDir: string): PolicyCatalog {
    return new PolicyCatalog(config.policies, baseDir);
  }

  get(name: string): Policy {
    const cached = this.loaded.get(name);
    if (cached) return cached;
    const configured = this.files[name];
    let policy: Policy;
    if (configured) policy = readPolicyFile(path.resolve(this.baseDir, configured), configured);
    else if (name === 'default') policy = readPolicyFile(BUILTIN_POLICY_FILE, 'policies/default.yaml');
    else
      throw new Error(
        `policy "${name}" is not defined: add it under policies: in ctem.yaml (name: path/to/policy.yaml)`,
      );
    this.loaded.set(name, policy);
    return policy;
  }
}
