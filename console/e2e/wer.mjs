// Word error rate, as tests/e2e/harness.py computes it (jiwer over normalised words):
// lowercase, punctuation out (apostrophes kept: "don't" is one word), then the word-level
// Levenshtein distance (substitutions + deletions + insertions) over the reference length.

/** The words of `text`, normalised for scoring. */
export function words(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, " ")
    .split(/\s+/)
    .filter(Boolean);
}

/** Edits that turn `ref` into `hyp` (arrays of words). */
export function editDistance(ref, hyp) {
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const substitution = prev[j - 1] + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      row.push(Math.min(substitution, prev[j] + 1, row[j - 1] + 1));
    }
    prev = row;
  }
  return prev[hyp.length];
}

/** WER of `hypothesis` against `reference` (1 when the reference is empty and the hypothesis is not). */
export function wer(reference, hypothesis) {
  const ref = words(reference);
  const hyp = words(hypothesis);
  if (ref.length === 0) return hyp.length === 0 ? 0 : 1;
  return editDistance(ref, hyp) / ref.length;
}
