// Entities found in a transcript (the detect stage): labels, grouping for pickers, and which
// displayed words belong to which entity.

import type { Entity, EntityTypeInfo } from "../api/enrichment";

const ACRONYMS: Record<string, string> = { ssn: "SSN", iban: "IBAN", ip: "IP" };
const CATEGORY_LABELS: Record<string, string> = {
  pii: "Personal (PII)",
  pci: "Payment card (PCI)",
  phi: "Health (PHI)",
  other: "Other",
};

/** "person_name" -> "Person name", "ip_address" -> "IP address". */
export function entityLabel(type: string): string {
  const words = type.split("_").map((w) => ACRONYMS[w] ?? w);
  const first = words[0] ?? "";
  return [first === first.toUpperCase() ? first : first.charAt(0).toUpperCase() + first.slice(1), ...words.slice(1)].join(" ");
}

export function categoryLabel(category: string): string {
  return CATEGORY_LABELS[category] ?? category;
}

/** Entity types grouped by category, in the server's order, for a multi-select. */
export function entityTypeGroups(types: EntityTypeInfo[]): { group: string; items: { value: string; label: string }[] }[] {
  const groups = new Map<string, { value: string; label: string }[]>();
  for (const t of types) {
    const items = groups.get(t.category) ?? [];
    items.push({ value: t.id, label: entityLabel(t.id) });
    groups.set(t.category, items);
  }
  return [...groups].map(([category, items]) => ({ group: categoryLabel(category), items }));
}

interface TimedWord {
  text: string;
  start: number;
  end: number;
}

function key(w: TimedWord): string {
  return `${w.start.toFixed(3)}|${w.end.toFixed(3)}|${w.text.trim()}`;
}

/**
 * For each displayed word (the segments' words, flattened), the index of the entity it
 * belongs to. Entities point into the transcript's own word list (time-sorted across
 * segments), so words are matched by time and text rather than by position.
 */
export function entityOfWord(displayed: TimedWord[], transcriptWords: TimedWord[], entities: Entity[]): Map<number, number> {
  const byKey = new Map<string, number>();
  entities.forEach((e, index) => {
    for (let i = e.first_word; i <= e.last_word && i < transcriptWords.length; i++) {
      const w = transcriptWords[i];
      if (w) byKey.set(key(w), index);
    }
  });
  const out = new Map<number, number>();
  displayed.forEach((w, i) => {
    const entity = byKey.get(key(w));
    if (entity !== undefined) out.set(i, entity);
  });
  return out;
}
