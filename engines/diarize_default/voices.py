"""Voiceprints of the found speakers, and matching them to enrolled voices. Pure functions.

A speaker's voiceprint is the unit-norm mean of the embeddings of the windows that fall in
its turns, each weighted by the seconds of speech it covers. The same computation on an
enrollment sample (POST /v1/speakers runs it through this diarizer) makes the library's
voiceprints, so a found speaker and an enrolled voice are compared like with like.

Matching is one-to-one: the assignment that maximises the summed cosine similarity
(`scipy.optimize.linear_sum_assignment`), each pair then kept only when its similarity
reaches the threshold. Two found speakers can never take the same name, and a voice that
resembles nobody enrolled stays anonymous.
"""

from __future__ import annotations

import numpy as np

from shared.contracts import KnownSpeaker, SpeakerTurn, Voiceprint
from shared.transcript import SpeakerMatch

# The encoder behind the embeddings (resemblyzer's GE2E, 256 dimensions). Stored with every
# voiceprint: a library enrolled with one encoder cannot be matched by another.
ENCODER = "resemblyzer"


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def voiceprints(embeddings: np.ndarray, spans_s: list[tuple[float, float]], turns: list[SpeakerTurn]) -> dict[str, Voiceprint]:
    """Per speaker of `turns`, its voiceprint from the windows (`spans_s`: start, end in
    seconds) whose centre lies in one of its turns. A speaker none of whose windows is
    centred in its turns (all its turns shorter than a window) has no voiceprint."""
    if not turns or len(embeddings) == 0:
        return {}
    starts = np.array([t.start for t in turns])
    ends = np.array([t.end for t in turns])
    owners: dict[str, list[int]] = {}
    for i, (a, b) in enumerate(spans_s):
        centre = (a + b) / 2
        inside = np.flatnonzero((starts <= centre) & (centre <= ends))
        if len(inside):
            owners.setdefault(turns[int(inside[0])].speaker, []).append(i)
    prints: dict[str, Voiceprint] = {}
    for speaker, rows in owners.items():
        weights = np.array([spans_s[i][1] - spans_s[i][0] for i in rows])
        mean = _unit((embeddings[rows] * weights[:, None]).sum(axis=0))
        seconds = sum(t.end - t.start for t in turns if t.speaker == speaker)
        prints[speaker] = Voiceprint(
            embedding=[round(float(x), 6) for x in mean], encoder=ENCODER, speech_seconds=round(seconds, 3)
        )
    return prints


def similarities(found: dict[str, Voiceprint], known: list[KnownSpeaker]) -> np.ndarray:
    """Cosine similarity of every found speaker (rows, in `found`'s order) with every known one."""
    a = np.array([_unit(np.asarray(v.embedding, dtype=float)) for v in found.values()])
    b = np.array([_unit(np.asarray(k.embedding, dtype=float)) for k in known])
    return a @ b.T


def match(found: dict[str, Voiceprint], known: list[KnownSpeaker], threshold: float) -> dict[str, SpeakerMatch]:
    """Found speaker id → the enrolled voice it is, for the pairs of the best one-to-one
    assignment whose similarity reaches `threshold`. Known voices of another encoder, or of
    another size, cannot be compared and are left out."""
    from scipy.optimize import linear_sum_assignment

    comparable = [
        k for k in known if found and all(k.encoder == v.encoder and len(k.embedding) == len(v.embedding) for v in found.values())
    ]
    if not comparable:
        return {}
    scores = similarities(found, comparable)
    rows, cols = linear_sum_assignment(scores, maximize=True)
    speakers = list(found)
    matches: dict[str, SpeakerMatch] = {}
    for r, c in zip(rows, cols):
        score = float(scores[r, c])
        if score >= threshold:
            voice = comparable[c]
            matches[speakers[r]] = SpeakerMatch(id=voice.id, name=voice.name, similarity=round(score, 4))
    return matches
