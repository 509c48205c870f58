import { describe, expect, test } from 'vitest';

import { ProbeLog } from './log.ts';

describe('ProbeLog', () => {
  test('keeps a ring of recent lines and the whole text, and marks its own notes', () => {
    const log = new ProbeLog({ ringLines: 3 });
    for (let i = 1; i <= 5; i++) log.append(`Info : line ${i}`);
    log.note('restarting OpenOCD');
    expect(log.recent(10)).toEqual(['Info : line 4', 'Info : line 5', '[rig] restarting OpenOCD']);
    expect(log.recent(1)).toEqual(['[rig] restarting OpenOCD']);
    expect(log.text()).toBe('Info : line 1\nInfo : line 2\nInfo : line 3\nInfo : line 4\nInfo : line 5\n[rig] restarting OpenOCD\n');
  });

  test('mark/since give one operation\'s lines', () => {
    const log = new ProbeLog();
    log.append('before');
    const m = log.mark();
    expect(log.since(m)).toEqual([]);
    log.append('during 1');
    log.append('during 2');
    expect(log.since(m)).toEqual(['during 1', 'during 2']);
  });

  test('the report copy is capped, and says so once; huge lines are cut', () => {
    const log = new ProbeLog({ maxChars: 30, maxLineChars: 8 });
    log.append('0123456789abcdef');
    expect(log.recent(1)).toEqual(['01234567… (8 more characters)']);
    for (let i = 0; i < 10; i++) log.append('Error: Broken pipe');
    const text = log.text();
    expect(text.match(/log truncated/g)).toHaveLength(1);
    expect(text.length).toBeLessThan(120);
    // The ring keeps going after the report copy stopped.
    expect(log.recent(1)).toEqual(['Error: B… (10 more characters)']);
  });

  test('listeners see every line until they unsubscribe', () => {
    const log = new ProbeLog();
    const seen: string[] = [];
    const off = log.onLine((l) => seen.push(l));
    log.append('a');
    off();
    log.append('b');
    expect(seen).toEqual(['a']);
  });
});
