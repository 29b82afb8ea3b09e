import { Command, CommanderError } from 'commander';
import { reportError } from './context.ts';
import { registerUpCommand } from './commands/up.ts';
import { registerStatusCommand } from './commands/status.ts';
import { registerDbCommand } from './commands/db.ts';
import { registerParseCommand } from './commands/parse.ts';
import { registerIngestCommand } from './commands/ingest.ts';
import { registerFeedsCommand } from './commands/feeds.ts';
import { registerScoreCommand } from './commands/score.ts';
import { registerExplainCommand } from './commands/explain.ts';
import { registerExposuresCommand } from './commands/exposures.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerDigestCommand } from './commands/digest.ts';
import { registerDashboardCommand } from './commands/dashboard.ts';
import { registerDoctorCommand } from './commands/doctor.ts';

export function buildProgram(): Command {
  const program = new Command('ctem')
    .description('Continuous Threat Exposure Management: from scanner findings to verified fixes')
    .option('-c, --config <file>', 'configuration file (default: $CTEM_CONFIG or ./ctem.yaml)')
    .showHelpAfterError()
    .exitOverride();
  registerUpCommand(program);
  registerStatusCommand(program);
  registerDbCommand(program);
  registerParseCommand(program);
  registerIngestCommand(program);
  registerFeedsCommand(program);
  registerScoreCommand(program);
  registerExplainCommand(program);
  registerExposuresCommand(program);
  registerDemoCommand(program);
  registerDigestCommand(program);
  registerDashboardCommand(program);
  registerDoctorCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err);
  }
}
