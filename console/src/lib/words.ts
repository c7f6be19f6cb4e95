// Joining transcript words back into text.

/** How far past the previous word a word may be found in the segment text (spaces, a stray mark). */
const MAX_GAP = 3;

/**
 * What goes before each word when a segment is rendered word by word: "" or " ".
 * Word texts come trimmed, so the spacing is read from the segment's own text: "speech",
 * "-to", "-text" in "a speech-to-text server" are joined without spaces. A word the text
 * does not contain where expected gets a space.
 */
export function separators(segmentText: string, words: readonly { text: string }[]): string[] {
  let pos = 0;
  return words.map((word, i) => {
    const text = word.text.trim();
    const at = text ? segmentText.indexOf(text, pos) : -1;
    const found = at >= 0 && (i === 0 || at - pos <= MAX_GAP);
    if (i === 0) {
      if (found) pos = at + text.length;
      return "";
    }
    if (!found) return " ";
    const spaced = /\s/.test(segmentText.slice(pos, at));
    pos = at + text.length;
    return spaced ? " " : "";
  });
}
