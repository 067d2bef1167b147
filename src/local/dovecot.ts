import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DataDirBusyError, MissingBinaryError, StartupError, freePort, isAlive, livePidFrom, sleep } from './services.ts';

/**
 * A real IMAP server on loopback for the email channel's tests and for `npm run sim:mail`:
 * Debian's Dovecot (package dovecot-imapd, written against 2.3.19) as a child process in the
 * foreground, with a configuration of its own in `dir` — the system's /etc/dovecot is never read —
 * plain IMAP on 127.0.0.1 (no TLS), maildir storage and a passwd-file of test users.
 *
 * Dovecot refuses to deliver mail as root (`first_valid_uid`), and as root it drops privileges to
 * its `dovecot` and `dovenull` users (the package creates them). So:
 * - as root, mail belongs to the system user `lapor-mail` (scripts/ensure-mail.sh creates it), the
 *   mail folders are chowned to it, and the login and internal processes run as Dovecot's own users;
 * - as anyone else, every Dovecot process runs as the current user, with no chroot.
 */

export const MAIL_SYSTEM_USER = 'lapor-mail';
const INSTALL = 'sudo apt-get install -y dovecot-imapd';

export interface MailUser {
  user: string;
  password: string;
}

export interface LocalDovecotOptions {
  /** Configuration, mail, state and log live here; several instances need several dirs. */
  dir: string;
  log: Logger;
  /** Default: a free port. */
  port?: number;
  /** @defaultValue one user `lapor` with a random password */
  users?: MailUser[];
  /**
   * Replaces the capabilities Dovecot announces after login (`imap_capability`), e.g. to play a
   * server without IDLE. @defaultValue Dovecot's own
   */
  capability?: string;
}

export interface LocalDovecot {
  host: '127.0.0.1';
  port: number;
  /** The master process; its process group holds every Dovecot process of this instance. */
  pid: number;
  users: MailUser[];
  /** `imap://user:pass@127.0.0.1:port/INBOX` for `user` (default: the first one), URL-encoded. */
  imapUrl(user?: string): string;
  /** Dovecot's log file, worth reading when a test fails. */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * The longest socket Dovecot makes below base_dir is about 30 characters, and a unix socket path
 * has at most 107 (sun_path): a deeper base_dir fails with a cryptic "path too long".
 */
const MAX_BASE_DIR = 70;

export async function startLocalDovecot(options: LocalDovecotOptions): Promise<LocalDovecot> {
  const binary = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'].find((path) => existsSync(path));
  // dovecot-core alone has no IMAP server: the imap binary comes with dovecot-imapd.
  if (!binary || !existsSync('/usr/lib/dovecot/imap')) throw new MissingBinaryError('dovecot (with its IMAP server)', INSTALL);

  const users = options.users ?? [{ user: 'lapor', password: randomBytes(12).toString('base64url') }];
  if (!users.length) throw new StartupError('startLocalDovecot needs at least one user');
  for (const { user, password } of users) {
    // passwd-file fields are separated by ':' and lines by newlines; user names become folder names.
    // Dovecot lowercases login names (auth_username_format = %Lu) before it looks them up.
    if (!/^[a-z0-9._+@-]+$/.test(user)) throw new StartupError(`mail user name ${JSON.stringify(user)} may hold only lowercase letters, digits and . _ + @ -`);
    if (!password || /[:\r\n]/.test(password)) throw new StartupError(`the password of mail user ${user} must be non-empty and hold no ':' or line break`);
  }

  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const ids = runAs();
  const mailRoot = join(dir, 'mail');
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'dovecot.conf');
  const passwdFile = join(dir, 'passwd');
  const logFile = join(dir, 'dovecot.log');
  for (const path of [mailRoot, stateDir]) mkdirSync(path, { recursive: true });

  const baseDir = baseDirFor(dir);
  const running = livePidFrom(join(baseDir, 'master.pid'));
  if (running) throw new DataDirBusyError(dir, running);

  const port = options.port ?? (await freePort());
  const homes = users.map(({ user }) => join(mailRoot, user.toLowerCase()));
  for (const home of homes) mkdirSync(home, { recursive: true });
  writeFileSync(
    passwdFile,
    users.map(({ user, password }, i) => `${user}:{PLAIN}${password}:${ids.mail.uid}:${ids.mail.gid}::${homes[i]}::\n`).join(''),
    { mode: 0o640 },
  );
  writeFileSync(configFile, dovecotConfig({ port, baseDir, stateDir, passwdFile, logFile, ids, capability: options.capability }));

  if (ids.root) {
    // The mail processes (lapor-mail) and the auth process (dovecot) reach their files through
    // `dir`: let others traverse it, without listing it.
    chmodSync(dir, (statSync(dir).mode & 0o7777) | 0o011);
    chownRecursive(mailRoot, ids.mail.uid, ids.mail.gid);
    chownSync(passwdFile, 0, ids.internalGid);
    chmodSync(passwdFile, 0o640);
    for (const [who, path, test] of [
      [ids.mail, mailRoot, '-w'],
      [{ uid: ids.internalUid, gid: ids.internalGid }, passwdFile, '-r'],
    ] as const) {
      if (!reachable(who, path, test)) {
        const closed = closedAncestor(dir);
        throw new StartupError(
          `Dovecot's unprivileged processes cannot reach ${path}: ${closed ? `${closed} is not searchable by others (chmod o+x ${closed})` : 'a folder above it is closed to them'}, or give Dovecot a folder elsewhere.`,
        );
      }
    }
  }

  const child = spawn(binary, ['-F', '-c', configFile], {
    // Its own process group: a Ctrl-C in the terminal reaches us, we stop Dovecot in order, and
    // stop() can find Dovecot's children by their group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Dovecot does not need our environment, and must not read a DOVECOT_* variable meant for another.
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...(process.env.TZ ? { TZ: process.env.TZ } : {}) },
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (output.length > 200) output.splice(0, output.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => options.log.error({ err }, 'dovecot failed'));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  try {
    await waitForGreeting(port, child, exited);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid!, 'SIGKILL');
      await exited;
    }
    if (!baseDir.startsWith(dir)) rmSync(baseDir, { recursive: true, force: true });
    const lines = dovecotErrors(output, logFile);
    throw new StartupError(
      `Dovecot did not start on 127.0.0.1:${port}: ${(err as Error).message}.${lines.length ? ` Dovecot said:\n${lines.join('\n')}` : ` Its log is ${logFile}.`}`,
      { cause: err },
    );
  }
  const pid = child.pid!;
  options.log.debug({ port, pid }, 'dovecot started');

  let stopping: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    pid,
    users,
    logFile,
    imapUrl(user?: string) {
      const entry = user === undefined ? users[0] : users.find((u) => u.user === user);
      if (!entry) throw new Error(`no mail user ${user}`);
      return `imap://${encodeURIComponent(entry.user)}:${encodeURIComponent(entry.password)}@127.0.0.1:${port}/INBOX`;
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          // SIGTERM: the master stops its children (shutdown_clients) and exits.
          child.kill('SIGTERM');
          const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }
        // The master leaves its log and stats processes and open IMAP sessions behind for a while
        // (seen on 2.3.19: about 2 s with a client logged in). They hold the port and the maildir.
        if (groupMembers(pid).length) killGroup(pid, 'SIGTERM');
        for (let i = 0; i < 20 && groupMembers(pid).length; i++) await sleep(50);
        if (groupMembers(pid).length) killGroup(pid, 'SIGKILL');
        for (let i = 0; i < 20 && groupMembers(pid).length; i++) await sleep(50);
        if (!baseDir.startsWith(dir)) rmSync(baseDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

interface Ids {
  root: boolean;
  /** Owner of the mail: lapor-mail as root, else the current user. */
  mail: { uid: number; gid: number; name: string };
  /** Dovecot's internal and login users by name (root), or the current user for all of them. */
  internalUser: string;
  internalGroup: string;
  loginUser: string;
  internalUid: number;
  internalGid: number;
}

function runAs(): Ids {
  if (process.getuid?.() === 0) {
    const mail = systemUser(MAIL_SYSTEM_USER, 'sudo bash scripts/ensure-mail.sh');
    const internal = systemUser('dovecot', INSTALL);
    systemUser('dovenull', INSTALL);
    return {
      root: true,
      mail: { ...mail, name: MAIL_SYSTEM_USER },
      internalUser: 'dovecot', internalGroup: 'dovecot', loginUser: 'dovenull',
      internalUid: internal.uid, internalGid: internal.gid,
    };
  }
  const me = userInfo();
  const group = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();
  if (!group) throw new StartupError(`Dovecot needs the current user (uid ${me.uid}) to have a named group in /etc/group`);
  return {
    root: false,
    mail: { uid: me.uid, gid: me.gid, name: me.username },
    internalUser: me.username, internalGroup: group, loginUser: me.username,
    internalUid: me.uid, internalGid: me.gid,
  };
}

function systemUser(name: string, install: string): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new MissingBinaryError(`the ${name} system user`, install);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Whether `who` can `test -r`/`-w` a path: as root, a missing o+x on a folder above `dir` shows up here. */
function reachable(who: { uid: number; gid: number }, path: string, test: '-r' | '-w'): boolean {
  const result = spawnSync('setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', 'test', test, path]);
  if (result.error) return true; // no setpriv (not util-linux): let Dovecot say what is wrong
  return result.status === 0;
}

/**
 * Unix sockets live in base_dir: `dir/run`, or for a deep `dir` a short folder in the temporary
 * folder named after `dir` (the same one on each start, so a Dovecot still running there is found).
 */
function baseDirFor(dir: string): string {
  const own = join(dir, 'run');
  if (own.length <= MAX_BASE_DIR) return own;
  const short = join(tmpdir(), `lapor-dovecot-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`);
  mkdirSync(short, { recursive: true, mode: 0o755 });
  // A shared /tmp: refuse a folder someone else made (or a symlink) in our name.
  const stat = lstatSync(short);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.()) throw new StartupError(`${short} exists and is not a folder of ours: remove it`);
  return short;
}

/** The nearest folder above `dir` that others may not enter (no o+x). */
function closedAncestor(dir: string): string | undefined {
  for (let current = dirname(dir); ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) return current;
    if (current === dirname(current)) return undefined;
  }
}

function chownRecursive(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownRecursive(child, uid, gid);
    else if (!lstatSync(child).isSymbolicLink()) chownSync(child, uid, gid);
  }
}

function dovecotConfig(c: { port: number; baseDir: string; stateDir: string; passwdFile: string; logFile: string; ids: Ids; capability?: string | undefined }): string {
  const { ids } = c;
  // Without root nothing can chroot: clear it for every service that has one by default
  // (`doveconf -d | grep chroot` on 2.3.19).
  const noChroot = ids.root
    ? ''
    : ['anvil', 'ipc', 'old-stats', 'aggregator', 'director', 'imap-login', 'pop3-login', 'submission-login', 'imap-urlauth-login']
        .map((service) => `service ${service} {\n  chroot =\n}\n`)
        .join('');
  return `# Written by src/local/dovecot.ts on each start; edits are lost.
protocols = imap
listen = 127.0.0.1${c.capability ? `\nimap_capability = ${c.capability}` : ''}
base_dir = ${c.baseDir}
state_dir = ${c.stateDir}
instance_name = lapor-dovecot-${c.port}
log_path = ${c.logFile}
info_log_path = ${c.logFile}

default_internal_user = ${ids.internalUser}
default_internal_group = ${ids.internalGroup}
default_login_user = ${ids.loginUser}
# Dovecot refuses uids below first_valid_uid (500): system users such as lapor-mail are below it.
first_valid_uid = ${ids.mail.uid}
last_valid_uid = ${ids.mail.uid}

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests of a refused login should not wait the default 2 s, nor should every later login from
# 127.0.0.1 wait up to 15 s (the auth penalty): mode 0 on its socket disables the penalty, as the
# Dovecot 2.3 documentation ("Authentication penalty") says.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${c.passwdFile}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${c.passwdFile}
}

mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  prefix =
  separator = /
}
# No folder is created in advance: like a real provider's mailbox, the client creates Processed
# and Quarantine itself, so that code path is tested.

# A gateway, its tests and a developer's mail client share one user on one address.
mail_max_userip_connections = 100
# IDLE learns of new mail by inotify; when the machine runs out of inotify instances (many
# parallel test servers), this poll is the fallback, and the default 30 s is longer than a test.
mailbox_idle_check_interval = 1 secs

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${c.port}
  }
  inet_listener imaps {
    port = 0
  }
}
${noChroot}`;
}

async function waitForGreeting(port: number, child: ChildProcess, exited: Promise<void>): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = 'no answer';
  // Whatever else holds the port (when Dovecot could not bind it) may never greet: the exit decides.
  const exit = exited.then(() => `it exited with code ${child.exitCode ?? child.signalCode}`);
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(await exit);
    try {
      const greeting = await Promise.race([readGreeting(port), exit.then((why) => Promise.reject(new Error(why)))]);
      if (greeting.startsWith('* OK')) return;
      last = `it greeted with ${JSON.stringify(greeting)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`no IMAP greeting in 30 s (${last})`);
}

function readGreeting(port: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('greeting timed out')));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        socket.end('x LOGOUT\r\n');
        done(data.slice(0, end));
      }
    });
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed before a greeting')));
  });
}

/** Dovecot's own error lines: from stderr (errors before its log process runs) and its log file. */
function dovecotErrors(output: string[], logFile: string): string[] {
  const logged = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n') : [];
  const all = [...output, ...logged.slice(-200)].filter(Boolean);
  // The auth process cannot reach the penalty socket we closed (see the config) once anvil is gone.
  const errors = all.filter((line) => /\b(Fatal|Error|Panic)\b|doveconf:/i.test(line) && !line.includes('anvil-auth-penalty'));
  // The same line often comes twice, on stderr and with a date in the log: keep one, without the date.
  const lines = (errors.length ? errors : all).map((line) => line.replace(/^\w{3} [ \d]\d \d\d:\d\d:\d\d (master: )?/, ''));
  return [...new Set(lines)].slice(-10);
}

/** Pids in process group `pgid` (the master's pid: it leads the group it was spawned in). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after the command name (which may hold spaces): state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && isAlive(Number(name))) members.push(Number(name));
  }
  return members;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // nothing left
  }
}
