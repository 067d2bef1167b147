import { describe, expect, it } from 'vitest';
import { createDatabase, testEnvVars } from '../helpers/env.ts';
import { runCli } from '../helpers/gateway-process.ts';

/** `lapor user …`: what an admin types, and what it refuses, with the exit codes scripts rely on. */

let env: Record<string, string>;

async function lapor(args: string[], input?: string) {
  env ??= testEnvVars({ LAPOR_DATABASE_URL: await createDatabase(), LAPOR_LOG_LEVEL: 'warn' });
  const run = runCli(args, env, input);
  const exit = await run.exited;
  return { code: exit.code, output: run.output() };
}

describe('lapor user', () => {
  it('adds accounts per role, refuses what does not fit, lists and disables', { timeout: 60_000 }, async () => {
    expect(await lapor(['user', 'add', '--email', 'Admin@Lapor.go.id', '--role', 'super_admin', '--password-stdin'], 'kata sandi panjang sekali\n')).toMatchObject({ code: 0, output: expect.stringContaining('added admin@lapor.go.id (super_admin)') });
    const refusals: [string[], string | undefined, number, RegExp][] = [
      [['user', 'add', '--email', 'admin@lapor.go.id', '--role', 'super_admin'], undefined, 1, /exists already/],
      [['user', 'add', '--email', 'x@lapor.go.id', '--role', 'kepala'], undefined, 64, /--role is one of/],
      [['user', 'add', '--email', 'not-an-email', '--role', 'operator'], undefined, 64, /--email/],
      [['user', 'add', '--email', 'a@pln.co.id', '--role', 'agency_admin'], undefined, 64, /needs --agency/],
      [['user', 'add', '--email', 'a@pln.co.id', '--role', 'agency_admin', '--agency', 'no-such'], undefined, 64, /no agency no-such/],
      [['user', 'add', '--email', 'l@pln.co.id', '--role', 'liaison', '--unit', 'polda-jabar', '--agency', 'pln'], undefined, 64, /belongs to polri/],
      [['user', 'add', '--email', 'o@lapor.go.id', '--role', 'operator', '--agency', 'pln'], undefined, 64, /belongs to no agency/],
      [['user', 'add', '--email', 's@lapor.go.id', '--role', 'operator', '--password-stdin'], 'pendek\n', 64, /at least 12 characters/],
      [['user', 'disable', '--email', 'nobody@lapor.go.id'], undefined, 1, /no account/],
    ];
    for (const [args, input, code, message] of refusals) {
      const result = await lapor(args, input);
      expect({ args: args.join(' '), code: result.code }).toEqual({ args: args.join(' '), code });
      expect(result.output).toMatch(message);
    }
    expect((await lapor(['user', 'add', '--email', 'lo@pln.co.id', '--role', 'liaison', '--unit', 'pln-uid-jabar'])).output).toMatch(/added lo@pln\.co\.id \(liaison, unit pln-uid-jabar\)\npassword \(shown once\): \S{24}/);
    expect((await lapor(['user', 'disable', '--email', 'lo@pln.co.id'])).code).toBe(0);
    const list = (await lapor(['user', 'list'])).output;
    expect(list).toContain('admin@lapor.go.id\tsuper_admin\t-\tactive');
    expect(list).toContain('lo@pln.co.id\tliaison\tpln-uid-jabar\tdisabled');
  });
});
