/**
 * Who may do what (issue #13). Pure: the operator API asks these questions, the database answers
 * none of them. The order of a refusal is fixed: no valid token (401), a report outside the
 * caller's reach (404: an agency never learns another agency's report exists), a role that may
 * never take this step (403), a step the report's status does not allow (409).
 */

export const ROLES = ['super_admin', 'agency_admin', 'liaison', 'operator'] as const;
export type Role = (typeof ROLES)[number];

/** The person behind a request: a user with a role, bound to an agency or a unit for agency roles. */
export interface Actor {
  userId: string;
  role: Role;
  agencySlug: string | null;
  unitSlug: string | null;
}

/** What the report must say for an actor to reach it. */
export interface Reachable {
  agencySlug: string | null;
  unitSlug: string | null;
}

/** Reports an actor may see at all: every one for a super admin, the agency's or unit's for agency roles, none for an operator. */
export function canReach(actor: Actor, report: Reachable): boolean {
  switch (actor.role) {
    case 'super_admin':
      return true;
    case 'agency_admin':
      return report.agencySlug !== null && report.agencySlug === actor.agencySlug;
    case 'liaison':
      return report.unitSlug !== null && report.unitSlug === actor.unitSlug;
    case 'operator':
      return false;
  }
}

/** The steps of the lifecycle API and the roles that may ever take them. */
export const STEP_ROLES = {
  verify: ['super_admin'],
  reweigh: ['super_admin'],
  dispose: ['super_admin'],
  assign: ['agency_admin'],
  return: ['agency_admin'],
  request_info: ['super_admin', 'agency_admin', 'liaison'],
  answer: ['agency_admin', 'liaison'],
  close: ['super_admin'],
  reject: ['super_admin'],
  archive: ['super_admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Step = keyof typeof STEP_ROLES;

export function mayTake(actor: Actor, step: Step): boolean {
  return (STEP_ROLES[step] as readonly Role[]).includes(actor.role);
}

/** Who may read the reporter's identity: super admins always; agency roles unless the report is anonim. */
export function mayReadIdentity(actor: Actor, report: { anonim: boolean }): boolean {
  if (actor.role === 'super_admin') return true;
  if (actor.role === 'operator') return false;
  return !report.anonim;
}

/** Queues, channel links and dead letters: the engineer on duty and super admins, never agency roles. */
export function mayOperate(actor: Actor): boolean {
  return actor.role === 'operator' || actor.role === 'super_admin';
}

/** How an actor appears in events: the role and the user id, never a name or an address. */
export function actorLabel(actor: Actor): string {
  return `${actor.role}:${actor.userId}`;
}
