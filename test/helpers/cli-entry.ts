/** Runs the CLI from source (for tests that need a real separate agent process). */
import { main } from '../../agent/cli.js';

process.exitCode = await main(process.argv.slice(2));
