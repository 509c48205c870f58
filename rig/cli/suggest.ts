// "did you mean": the candidate nearest to a mistyped word. Edit distance counts an adjacent swap as one
// edit (optimal string alignment), since "upgarde" is one slip of the fingers, not two; a word that starts
// exactly one candidate ("readb" → readback) also counts. Loaded by `rig --help`'s path: no dependencies.

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate `word` most likely meant, or undefined when none is close: at most one edit for short words,
 * about a third of the word for longer ones, or the only candidate that starts with it (3 letters or more).
 */
export function closest(word: string, candidates: Iterable<string>, opts: { caseSensitive?: boolean } = {}): string | undefined {
  const norm = (s: string): string => (opts.caseSensitive ? s : s.toLowerCase());
  const w = norm(word);
  const list = [...candidates];
  const exact = list.find((c) => norm(c) === w);
  if (exact !== undefined) return exact;
  const bare = w.replace(/^-+/, '');
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of list) {
    const d = editDistance(w, norm(c));
    // Equally near: the one the word starts ("of" is short for off more likely than a slip for on).
    if (d < bestDistance || (d === bestDistance && best !== undefined && !norm(best).startsWith(w) && norm(c).startsWith(w))) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(bare.length / 3));
  if (best !== undefined && bestDistance <= allowed) return best;
  if (bare.length >= 3) {
    const starting = list.filter((c) => norm(c).replace(/^-+/, '').startsWith(bare));
    if (starting.length === 1) return starting[0];
  }
  return undefined;
}

/** " (did you mean 'doctor'?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean '${c}'?)`;
}
