import { describe, expect, it } from 'vitest';
import { IllegalTransitionError, STATUSES, assertTransition, canTransition, colourOf } from '../../src/core/report.ts';

describe('report lifecycle', () => {
  it('gives every status a colour: merah untouched, kuning in progress, hijau closed', () => {
    expect(colourOf('belum_terverifikasi')).toBe('merah');
    expect(colourOf('terdisposisi')).toBe('merah');
    expect(colourOf('sedang_diproses')).toBe('kuning');
    expect(colourOf('tertunda')).toBe('kuning');
    expect(colourOf('selesai')).toBe('hijau');
    for (const status of STATUSES) expect(['merah', 'kuning', 'hijau']).toContain(colourOf(status));
  });

  it('allows the path of a normal report and refuses shortcuts', () => {
    const path = ['belum_terverifikasi', 'terverifikasi', 'terdisposisi', 'sedang_diproses', 'selesai'] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
    expect(canTransition('belum_terverifikasi', 'selesai')).toBe(false);
    expect(canTransition('arsip', 'belum_terverifikasi')).toBe(false);
    expect(() => assertTransition('belum_terverifikasi', 'sedang_diproses')).toThrow(IllegalTransitionError);
  });

  it('lets a TIDAK PUAS reopen a closed report, and a returned report be forwarded again', () => {
    expect(canTransition('selesai', 'sedang_diproses')).toBe(true);
    expect(canTransition('bukan_wewenang', 'terdisposisi')).toBe(true);
  });

  it('leaves arsip as the only dead end', () => {
    for (const from of STATUSES) {
      const next = STATUSES.filter((to) => canTransition(from, to));
      if (from === 'arsip') expect(next).toEqual([]);
      else expect(next.length, from).toBeGreaterThan(0);
    }
  });
});
