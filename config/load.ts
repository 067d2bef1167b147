import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RulesConfigSchema, defaultRules, type RulesConfig } from './rules.ts';
import { ConfigSchema, type Config } from './schema.ts';

/**
 * The only reader of `process.env` in the project. Everything else receives a parsed `Config`.
 */

export const ENV_PREFIX = 'LAPOR_';

/** Platform conventions (Heroku, Render, compose files) that we honour below their LAPOR_ names. */
const CONVENTIONAL_ALIASES: Record<string, string> = {
  LAPOR_PORT: 'PORT',
  LAPOR_DATABASE_URL: 'DATABASE_URL',
  LAPOR_REDIS_URL: 'REDIS_URL',
};

/** `queue.lockMs` → `LAPOR_QUEUE_LOCK_MS`. */
export function envName(path: readonly string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

export interface ConfigField {
  path: string[];
  env: string;
  description: string;
  defaultValue: unknown;
}

/** Every leaf of the schema with its variable name, description and default: the README table. */
export function configFields(schema: z.ZodType = ConfigSchema, path: string[] = []): ConfigField[] {
  const object = unwrapToObject(schema);
  if (!object) {
    let defaultValue: unknown;
    const parsed = schema.safeParse(undefined);
    if (parsed.success) defaultValue = parsed.data;
    return [{ path, env: envName(path), description: schema.description ?? '', defaultValue }];
  }
  return Object.entries(object.shape).flatMap(([key, child]) => configFields(child as z.ZodType, [...path, key]));
}

function unwrapToObject(schema: z.ZodType): z.ZodObject | undefined {
  let current: z.ZodType = schema;
  // Defaults, prefaults and optionals wrap the object; peel them off.
  while (current instanceof z.ZodDefault || current instanceof z.ZodPrefault || current instanceof z.ZodOptional) {
    current = current.unwrap() as z.ZodType;
  }
  return current instanceof z.ZodObject ? current : undefined;
}

export class ConfigError extends Error {
  readonly code = 'LAPOR_CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Builds the configuration from an optional JSON file (`LAPOR_CONFIG`) and the environment.
 * Throws `ConfigError` listing every bad field with the variable to fix and what it expects.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const fields = configFields();
  const known = new Set(fields.map((f) => f.env));
  const problems: string[] = [];

  let input: Record<string, unknown> = {};
  const file = env.LAPOR_CONFIG;
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      input = parsed as Record<string, unknown>;
    } catch (err) {
      problems.push(`LAPOR_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    }
  }

  for (const field of fields) {
    const alias = CONVENTIONAL_ALIASES[field.env];
    const value = env[field.env] ?? (alias ? env[alias] : undefined);
    if (value !== undefined && value !== '') setPath(input, field.path, value);
  }
  // A misspelt variable is a silent misconfiguration at 2 a.m.: name it.
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && name !== 'LAPOR_CONFIG' && !known.has(name) && !isChannelVariable(name)) {
      problems.push(`${name}: unknown setting (known: see the README's configuration table)`);
    }
  }

  const result = ConfigSchema.safeParse(input);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map(String);
      const where = path.length ? envName(path) : 'LAPOR_CONFIG';
      problems.push(`${where}: ${issue.message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return result.data as Config;
}

/** Channel adapters own their own settings (e.g. LAPOR_SMPP_URLS); they are parsed by their config.ts. */
function isChannelVariable(name: string): boolean {
  return /^LAPOR_(X|TWITTER|EMAIL|IMAP|SMTP|MAIL|TELEGRAM|WHATSAPP)_/.test(name);
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** The verification rules: config/rules.ts's defaults, tuned by `LAPOR_RULES_FILE` when set. */
export function loadRules(config: Config): RulesConfig {
  if (!config.rulesFile) return defaultRules;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(config.rulesFile, 'utf8'));
  } catch (err) {
    throw new ConfigError([`LAPOR_RULES_FILE: cannot read ${config.rulesFile}: ${(err as Error).message}`]);
  }
  const parsed = RulesConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `LAPOR_RULES_FILE ${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return parsed.data;
}
