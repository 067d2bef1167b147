import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ROLES, type Role } from './core/roles.ts';
import { hashPassword } from './http/auth.ts';
import { findUnit } from './store/agencies.ts';
import type { Db } from './store/db.ts';
import { disableUser, insertUser, listUsers } from './store/users.ts';

/** `lapor user add | list | disable`: accounts of the people who run LAPOR!. Returns the exit code. */

interface Io {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const EmailSchema = z.email().max(254);
const MIN_PASSWORD = 12;

export async function runUserCommand(db: Db, action: string | undefined, flags: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const fail = (message: string, code = 64) => {
    io.stderr.write(`${message}\n`);
    return code;
  };
  const text = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);

  if (action === 'list') {
    const users = await listUsers(db);
    io.stdout.write(
      users.length
        ? `${users.map((u) => [u.email, u.role, u.unitSlug ?? u.agencySlug ?? '-', u.disabledAt ? 'disabled' : 'active'].join('\t')).join('\n')}\n`
        : 'no users yet: lapor user add --email you@example.go.id --role super_admin\n',
    );
    return 0;
  }

  const email = text('email')?.trim().toLowerCase();
  if (!email || !EmailSchema.safeParse(email).success) return fail('give the account with --email name@example.go.id');

  if (action === 'disable') {
    if (!(await disableUser(db, email))) return fail(`no account ${email}`, 1);
    io.stdout.write(`disabled ${email}; its sessions are ended\n`);
    return 0;
  }
  if (action !== 'add') return fail('lapor user add | list | disable (see lapor user --help)');

  const role = text('role');
  if (!role || !(ROLES as readonly string[]).includes(role)) return fail(`--role is one of: ${ROLES.join(', ')}`);
  let agencySlug: string | null = null;
  let unitSlug: string | null = null;
  if (role === 'agency_admin') {
    agencySlug = text('agency') ?? null;
    if (!agencySlug || text('unit')) return fail('an agency_admin needs --agency SLUG (and no --unit); GET /api/v1/agencies lists them');
    const { rowCount } = await db.query('SELECT 1 FROM agencies WHERE slug = $1', [agencySlug]);
    if (!rowCount) return fail(`no agency ${agencySlug}; GET /api/v1/agencies lists them`);
  } else if (role === 'liaison') {
    const unit = text('unit') ? await findUnit(db, text('unit')!) : undefined;
    if (!unit) return fail('a liaison needs --unit SLUG of an existing unit; GET /api/v1/agencies lists them');
    if (text('agency') && text('agency') !== unit.agencySlug) return fail(`unit ${unit.slug} belongs to ${unit.agencySlug}, not ${text('agency')}`);
    unitSlug = unit.slug;
    agencySlug = unit.agencySlug;
  } else if (text('agency') || text('unit')) {
    return fail(`a ${role} belongs to no agency or unit`);
  }

  let password: string;
  let generated = false;
  if (flags['password-stdin']) {
    password = (await firstLine(io.stdin)).replace(/\r?\n$/, '');
    if (password.length < MIN_PASSWORD) return fail(`the password must have at least ${MIN_PASSWORD} characters`);
  } else {
    password = randomBytes(18).toString('base64url');
    generated = true;
  }
  const user = await insertUser(db, { email, role: role as Role, agencySlug, unitSlug, passwordHash: await hashPassword(password) });
  if (!user) return fail(`an account ${email} exists already`, 1);
  io.stdout.write(`added ${email} (${role}${unitSlug ? `, unit ${unitSlug}` : agencySlug ? `, agency ${agencySlug}` : ''})\n`);
  if (generated) io.stdout.write(`password (shown once): ${password}\n`);
  return 0;
}

/** One line of standard input, up to and including its newline (or the end of input). */
async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let buffered = '';
  for await (const chunk of stream) {
    buffered += chunk.toString();
    const newline = buffered.indexOf('\n');
    if (newline >= 0) return buffered.slice(0, newline + 1);
    if (buffered.length > 4096) break;
  }
  return buffered;
}
