// The house's rules, checked by `npm run check` (npm run depcruise): no import cycle (type imports
// included), a pure domain, and imports that follow the layers
//
//   domain ← contracts ← runtime, db ← capabilities ← activities, bots, cli ← app (composition root)
//                                                      workflows (types of activities only), worker
//
// where the capabilities are the library folders: scanners, discovery, ingest, intel, lifecycle,
// tickets, patching, reporting, chat. Tests, benchmarks and scripts may import anything.
const CAPABILITIES = '(scanners|discovery|ingest|intel|lifecycle|tickets|patching|reporting|chat)';

/** A rule: what `from` may not import (`to`), with why; type-only imports count unless said otherwise. */
const forbid = (name, comment, from, to, extra = {}) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: to, ...extra },
});

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'An import cycle ties modules together: break it by moving the shared part down a layer.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    forbid(
      'domain-is-pure',
      'domain/ is pure model and policy: no Node built-ins, no I/O library, nothing above it.',
      '^domain/',
      '^(?!domain/)',
      { pathNot: '^node_modules/(zod|yaml|ae-cvss-calculator)/' },
    ),
    {
      name: 'domain-no-builtins',
      comment: 'domain/ runs inside workflows too: no Node built-ins.',
      severity: 'error',
      from: { path: '^domain/' },
      to: { dependencyTypes: ['core'] },
    },
    forbid(
      'contracts-below-clients',
      'contracts/ is what clients and workflows share: domain types and message definitions only.',
      '^contracts/',
      '^(?!(contracts|domain)/|node_modules/@temporalio/workflow/)',
    ),
    forbid(
      'infrastructure-below-capabilities',
      'runtime/ and db/ are infrastructure: they know no capability, adapter or the composition root.',
      '^(runtime|db)/',
      `^(${CAPABILITIES.slice(1, -1)}|activities|bots|cli|app|worker|workflows)/`,
    ),
    forbid(
      'capabilities-below-adapters',
      'A capability is library code: it never calls up into the Temporal adapters, the bots, the CLI, the composition root or workflow code.',
      `^${CAPABILITIES}/`,
      '^(activities|bots|cli|app|worker|workflows)/',
    ),
    forbid(
      'activities-are-adapters',
      'activities/ adapts capabilities to Temporal: it does not reach into bots, the CLI, the composition root or workflows.',
      '^activities/',
      '^(bots|cli|app|worker|workflows)/',
    ),
    forbid(
      'bots-are-adapters',
      'bots/ answers HTTP on top of the capabilities: not the activities, the CLI, the composition root or workflows.',
      '^bots/',
      '^(activities|cli|app|worker|workflows)/',
    ),
    forbid(
      'cli-is-an-adapter',
      'cli/ gets what the composition root builds through cli/services.ts; it imports neither app/ nor the adapters.',
      '^cli/',
      '^(activities|bots|app|worker|workflows)/',
    ),
    forbid(
      'workflows-are-deterministic',
      'Workflow code imports domain, contracts and other workflow code; activities only as types.',
      '^workflows/',
      '^(?!(workflows|domain|contracts)/|node_modules/@temporalio/(workflow|common)/)',
      { dependencyTypesNot: ['type-only'] },
    ),
    forbid(
      'nothing-imports-the-composition-root',
      'app/ wires the process; only entry points (bin/ctem.js), tests and benchmarks import it.',
      `^(domain|contracts|runtime|db|${CAPABILITIES.slice(1, -1)}|activities|bots|cli|workflows|worker)/`,
      '^app/',
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: {
      path: '(^|/)(node_modules|dist|\\.ctem|test|bench|scripts|test-results|coverage)/|\\.test\\.ts$|/testdata/',
    },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
