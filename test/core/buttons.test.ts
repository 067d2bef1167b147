import { describe, expect, it } from 'vitest';
import { buttonText, buttonsFor } from '../../src/core/buttons.ts';

/** A pressed button is the words it stands for, read by the one keyword parser. */
describe('buttonText', () => {
  it('reads our buttons and the earlier bot\'s privacy buttons, never one that makes a report less private', () => {
    expect(buttonText('p:r:5370467387')).toBe('RAHASIA 5370467387');
    expect(buttonText('p:a:5370467387')).toBe('ANONIM 5370467387');
    expect(buttonText('s:y:5370467387')).toBe('PUAS 5370467387');
    expect(buttonText('privasi:rahasia:5370467387')).toBe('RAHASIA 5370467387');
    expect(buttonText('privasi:anonim:5370467387')).toBe('ANONIM 5370467387');
    expect(buttonText('privasi:publik:5370467387')).toBeUndefined();
    expect(buttonText('p:r:0370467387')).toBeUndefined();
    expect(buttonText('hapus-semua')).toBeUndefined();
    expect(buttonText(undefined)).toBeUndefined();
  });

  it('every button we offer reads back as words', () => {
    for (const b of buttonsFor('received', 'public', '5370467387', 'id')) expect(buttonText(b.id)).toMatch(/5370467387$/);
  });
});
