// Who is clicking: a chat account mapped to a person of ctem.yaml (people[].slack, people[].teams),
// and a person mapped to roles per scope. Pure lookups over the loaded configuration; the decision
// itself is authorized by the campaign workflow's validator (domain/authorization.ts), not here.
import type { Config, Person, RoleName } from '../domain/config.ts';
import { roleNames } from '../domain/config.ts';

export interface ChatIdentity {
  transport: 'slack' | 'teams';
  /** Slack user id ("U0ALICE"), or Teams ids: Entra object id and/or the Teams user id "29:…". */
  userIds: string[];
}

export class PeopleDirectory {
  private readonly bySlack = new Map<string, Person>();
  private readonly byTeams = new Map<string, Person>();
  private readonly byId = new Map<string, Person>();

  constructor(private readonly config: Config) {
    for (const p of config.people) {
      this.byId.set(p.id, p);
      if (p.slack) this.bySlack.set(p.slack, p);
      // Entra object ids are GUIDs whose case varies between Teams payloads.
      if (p.teams) this.byTeams.set(p.teams.toLowerCase(), p);
    }
  }

  person(id: string): Person | undefined {
    return this.byId.get(id);
  }

  /** The person behind a chat account, or undefined when the account is not in people[]. */
  resolve(identity: ChatIdentity): Person | undefined {
    for (const id of identity.userIds) {
      const p = identity.transport === 'slack' ? this.bySlack.get(id) : this.byTeams.get(id.toLowerCase());
      if (p) return p;
    }
    return undefined;
  }

  bySlackId(userId: string): Person | undefined {
    return this.bySlack.get(userId);
  }

  /** The roles a person holds in a scope (ctem.yaml scopes[].roles). */
  rolesIn(personId: string, scopeName: string): RoleName[] {
    const scope = this.config.scopes.find((s) => s.name === scopeName);
    if (!scope) return [];
    return roleNames.filter((r) => scope.roles[r].includes(personId));
  }

  /** Everyone holding a role in a scope, for escalation wording and reassign choices. */
  holders(scopeName: string, role: RoleName): Person[] {
    const scope = this.config.scopes.find((s) => s.name === scopeName);
    if (!scope) return [];
    return scope.roles[role].map((id) => this.byId.get(id)).filter((p): p is Person => p !== undefined);
  }

  /** People who may be assigned an exposure of the scope (anyone with a role in it). */
  assignable(scopeName: string): Person[] {
    const seen = new Map<string, Person>();
    for (const role of roleNames) for (const p of this.holders(scopeName, role)) seen.set(p.id, p);
    return [...seen.values()];
  }

  everyone(): Person[] {
    return [...this.byId.values()];
  }
}
