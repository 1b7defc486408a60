/** The one `recorder` command: thin subcommands over device/, gateway/ and hardware/. */
import { Command, CommanderError } from 'commander';
import { registerCa } from './commands/ca.ts';
import { registerDemo } from './commands/demo.ts';
import { registerDevice } from './commands/device.ts';
import { registerEvidence } from './commands/evidence.ts';
import { registerGnss } from './commands/gnss.ts';
import { registerFleet } from './commands/fleet.ts';
import { registerGateway } from './commands/gateway.ts';
import { registerJournal } from './commands/journal.ts';
import { registerKeysCenter, registerProfile } from './commands/profile.ts';
import { registerVerify } from './commands/verify.ts';
import { registerDeviceFactory } from './commands/device-factory.ts';
import { registerFlash } from './commands/flash.ts';
import { registerProfileSigning } from './commands/profile-signing.ts';
import { registerProfilePush } from './commands/profile-push.ts';
import { EXIT_ERROR, EXIT_OK, printError } from './output.ts';

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('recorder')
    .description('whole-process enforcement recorder and collection station')
    .showHelpAfterError()
    .exitOverride();
  const run = async (action: () => Promise<number>) => {
    try {
      setExit(await action());
    } catch (error) {
      setExit(printError(error));
    }
  };
  registerDemo(program, run);
  registerJournal(program, run);
  registerDevice(program, run);
  registerGnss(program, run);
  registerProfile(program, run);
  registerKeysCenter(program, run);
  registerVerify(program, run);
  registerCa(program, run);
  registerGateway(program, run);
  registerFleet(program, run);
  // Evidence store, center and relay (issue 6 items 4, 5)
  registerEvidence(program, run);
  // Provisioning (issue 7)
  registerProfileSigning(program, run);
  registerDeviceFactory(program, run);
  registerFlash(program, run);
  registerProfilePush(program, run);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors with 1, which we map to 2.
      return error.exitCode === 0 ? EXIT_OK : EXIT_ERROR;
    }
    return printError(error);
  }
  return code;
}
