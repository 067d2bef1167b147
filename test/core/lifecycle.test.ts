import { describe, expect, it } from 'vitest';
import { IllegalStepError, STEP_FROM, planStep, type StepInput } from '../../src/core/lifecycle.ts';
import { STATUSES, canTransition } from '../../src/core/report.ts';
import { STEP_ROLES, canReach, mayReadIdentity, type Actor } from '../../src/core/roles.ts';

const INPUTS: StepInput[] = [
  { step: 'verify', kind: 'pengaduan', weight: 'ringan' },
  { step: 'reweigh', weight: 'berat' },
  { step: 'dispose', agency: 'pln' },
  { step: 'assign', unit: 'pln-uid-jabar' },
  { step: 'return', reason: 'bukan wewenang' },
  { step: 'request_info', message: 'di mana?' },
  { step: 'answer', text: 'sudah' },
  { step: 'close', reason: 'selesai' },
  { step: 'reject', reason: 'tidak jelas' },
  { step: 'archive', reason: 'spam' },
];

describe('planStep', () => {
  it('plans each step exactly from its statuses, always to a legal next status', () => {
    for (const input of INPUTS) {
      for (const status of STATUSES) {
        const state = { status, agencySlug: 'pln', unitSlug: null, resumeStatus: null };
        if (STEP_FROM[input.step].includes(status)) {
          const plan = planStep(state, input);
          expect(plan.from).toBe(status);
          expect(plan.to === status || canTransition(status, plan.to), `${input.step}: ${status} → ${plan.to}`).toBe(true);
        } else {
          expect(() => planStep(state, input), `${input.step} from ${status}`).toThrow(IllegalStepError);
        }
      }
    }
  });

  it('remembers where a report in tertunda returns to, and forgets the agency on a return', () => {
    expect(planStep({ status: 'terdisposisi', agencySlug: 'pln', unitSlug: 'pln-uid-jabar', resumeStatus: null }, { step: 'request_info', message: 'foto?' }).update).toEqual({ status: 'tertunda', resumeStatus: 'terdisposisi' });
    const back = planStep({ status: 'terdisposisi', agencySlug: 'pln', unitSlug: 'pln-uid-jabar', resumeStatus: null }, { step: 'return', reason: 'bukan kami' });
    expect(back.update).toEqual({ status: 'bukan_wewenang', agencySlug: null, unitSlug: null });
    expect(back.event.data).toEqual({ agency: 'pln', unit: 'pln-uid-jabar' });
  });

  it('rejects a report waiting for its reporter only before any disposition', () => {
    expect(planStep({ status: 'tertunda', agencySlug: null, unitSlug: null, resumeStatus: 'terverifikasi' }, { step: 'reject', reason: 'x' }).to).toBe('tidak_dapat_diproses');
    expect(() => planStep({ status: 'tertunda', agencySlug: 'pln', unitSlug: null, resumeStatus: 'terdisposisi' }, { step: 'reject', reason: 'x' })).toThrow(IllegalStepError);
  });
});

describe('roles', () => {
  const actor = (role: Actor['role'], agencySlug: string | null = null, unitSlug: string | null = null): Actor => ({ userId: '1', role, agencySlug, unitSlug });
  it('reaches reports by agency and unit; operators reach none', () => {
    const report = { agencySlug: 'pln', unitSlug: 'pln-uid-jabar' };
    expect(canReach(actor('super_admin'), report)).toBe(true);
    expect(canReach(actor('agency_admin', 'pln'), report)).toBe(true);
    expect(canReach(actor('agency_admin', 'polri'), report)).toBe(false);
    expect(canReach(actor('liaison', 'pln', 'pln-uid-jabar'), report)).toBe(true);
    expect(canReach(actor('liaison', 'pln', 'pln-uid-jakarta-raya'), report)).toBe(false);
    expect(canReach(actor('agency_admin', null), { agencySlug: null, unitSlug: null })).toBe(false);
    expect(canReach(actor('operator'), report)).toBe(false);
  });
  it('lets only super admins read an anonim reporter', () => {
    expect(mayReadIdentity(actor('super_admin'), { anonim: true })).toBe(true);
    for (const role of ['agency_admin', 'liaison', 'operator'] as const) expect(mayReadIdentity(actor(role, 'pln', 'u'), { anonim: true })).toBe(false);
    expect(mayReadIdentity(actor('liaison', 'pln', 'u'), { anonim: false })).toBe(true);
  });
  it('never lets an operator take a step', () => {
    for (const roles of Object.values(STEP_ROLES)) expect(roles).not.toContain('operator');
  });
});
