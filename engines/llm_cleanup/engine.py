"""The refine stage: transcript cleanup through any OpenAI-compatible chat-completions server.

`DALSTON_LLM_BASE_URL` (Ollama's http://host:11434/v1, vLLM, llama.cpp's server, ...) with
`DALSTON_LLM_MODEL` and optionally `DALSTON_LLM_API_KEY`. Four kinds of request:

1. Cleanup, in batches of segments (~`llm_max_segment_chars` each): casing and punctuation,
   and under `no_verbatim` fillers and false starts removed. The answer is JSON with the same
   segment ids; `align.clean_segment` maps each cleaned text back onto the timed words and
   refuses (keeps the original segment) an answer that is missing, malformed, changes more
   than half the words or touches a detected entity.
2. Speaker naming (diarized transcripts): which speaker ids say or are called by a name. A name
   that does not occur in the transcript is dropped (the model made it up).
3. Speaker roles, when asked (ElevenLabs `detect_speaker_roles`): which speaker is the agent and
   which the customer, asked twice with the speakers' labels swapped. Kept only when both answers
   name the same two distinct speakers of the transcript; anything else is refused (no roles)
   and counted.
4. Summary, when asked for.

`RefineConfig.cleanup` off (only roles asked) skips 1 and 2: the text comes back unchanged.

Every refusal is counted in `details`; a server that cannot be reached fails the task
(retryable), which the DAG treats as an optional stage's warning.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from engines.assembly import transcript_from_inputs
from engines.base import EngineError, config_of, read_input, write_output
from engines.llm_cleanup.align import SegmentResult, clean_segment, repoint_entities
from shared.contracts import DetectOutput, RefineConfig, RefineOutput, TaskMessage
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore
from shared.transcript import Entity, Segment, Transcript

M = TypeVar("M", bound=BaseModel)

MAX_CHANGE = 0.5  # a segment whose words change more than this keeps its original
SUMMARY_CHARS = 12000  # transcript text sent for the summary (the head of a long one)
NAMING_CHARS = 6000  # transcript text sent for speaker naming: introductions come early
ROLES_CHARS = 6000  # transcript text sent for speaker roles: the greeting and the request come early
LABELS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]  # what the model sees of speakers when asked their roles
MAX_WARNINGS = 20

CLEANUP_PROMPT = (
    "You correct automatic speech-recognition transcripts. For every segment return the same words "
    "with correct capitalization and punctuation (sentence case, periods, commas, question marks, "
    "apostrophes). Do not add, remove, reorder, translate or replace words; do not answer, explain or summarize. "
    'Answer only with JSON: {"segments": [{"id": <the same id>, "text": "<corrected text>"}]}.'
)
NO_VERBATIM_PROMPT = (
    " Also remove filler words (um, uh, er, ah, hmm) and false starts (words the speaker abandoned and "
    "then repeated or corrected), keeping every other word exactly."
)
EXAMPLE_IN = {"segments": [{"id": 0, "text": "so i think we should uh start with the budget"}, {"id": 1, "text": "is that okay"}]}
EXAMPLE_OUT = {
    "segments": [{"id": 0, "text": "So I think we should uh start with the budget."}, {"id": 1, "text": "Is that okay?"}]
}
EXAMPLE_OUT_NV = {
    "segments": [{"id": 0, "text": "So I think we should start with the budget."}, {"id": 1, "text": "Is that okay?"}]
}
NAMING_PROMPT = (
    "Below is a transcript; each line starts with a speaker id. Find the speakers whose own name is said "
    'in the transcript: they introduce themselves ("I\'m Margaret", "my name is Tom") or are addressed by name. '
    'Answer only with JSON: {"speakers": [{"id": "<speaker id>", "name": "<name>"}]}; an empty list when no name is said.'
)
ROLES_PROMPT = (
    "Below is a conversation between a company's agent and a customer; each line starts with a speaker id. "
    "The agent works for the company or service: greets callers on its behalf, asks for their details, answers "
    "and helps. The customer calls or writes in for help, asks questions and gives their own details. "
    'Answer only with JSON: {"agent": "<speaker id>", "customer": "<speaker id>"}.'
)
SUMMARY_PROMPT = (
    "Summarize this transcript in a few sentences: the topics, decisions and action items. Answer with the summary only."
)

CLEANUP_SCHEMA = {
    "type": "object",
    "properties": {
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
                "required": ["id", "text"],
            },
        }
    },
    "required": ["segments"],
}
NAMING_SCHEMA = {
    "type": "object",
    "properties": {
        "speakers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"],
            },
        }
    },
    "required": ["speakers"],
}


def roles_schema(ids: list[str]) -> dict[str, Any]:
    # The server's grammar then only lets the model name speakers that exist.
    speaker = {"type": "string", "enum": ids}
    return {"type": "object", "properties": {"agent": speaker, "customer": speaker}, "required": ["agent", "customer"]}


class _Cleaned(BaseModel):
    id: int
    text: str


class _CleanupAnswer(BaseModel):
    segments: list[_Cleaned]


class _Named(BaseModel):
    id: str
    name: str


class _NamingAnswer(BaseModel):
    speakers: list[_Named]


class _RolesAnswer(BaseModel):
    agent: str
    customer: str


class LlmCleanupEngine:
    engine_id = "llm-cleanup"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._client: httpx.Client | None = None

    def load(self) -> None:
        if not self.settings.llm_base_url:
            raise RuntimeError("llm-cleanup needs an OpenAI-compatible server: set DALSTON_LLM_BASE_URL")
        headers = {"authorization": f"Bearer {self.settings.llm_api_key}"} if self.settings.llm_api_key else {}
        self._client = httpx.Client(
            base_url=self.settings.llm_base_url.rstrip("/"), headers=headers, timeout=self.settings.llm_timeout_s
        )

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        config = config_of(task, RefineConfig)
        transcript = transcript_from_inputs(store, task)
        detected = read_input(store, task, "detect", DetectOutput) if "detect" in task.inputs else None
        return write_output(store, task, self.refine(transcript, config, detected))

    def refine(self, transcript: Transcript, config: RefineConfig, detected: DetectOutput | None = None) -> RefineOutput:
        """Pure but for the LLM requests: the assembled transcript in, the refine output out."""
        started = time.monotonic()
        warnings: list[str] = []
        details: dict[str, Any] = {"engine_id": self.engine_id, "model": self.settings.llm_model, "cleanup": config.cleanup}
        segments, entities = transcript.segments, detected.entities if detected is not None else None
        if config.cleanup:
            segments, entities = self._cleaned(transcript, config, entities, warnings, details)
        names = self._speaker_names(transcript) if transcript.speakers and config.cleanup else {}
        roles: dict[str, str] = {}
        if config.speaker_roles:
            roles, refusal = self._speaker_roles(transcript)
            details["speaker_roles_refused"] = int(refusal is not None)
            if refusal is not None:
                warnings.append(f"speaker roles: {refusal}")
        summary = self._summary(segments) if config.summary else None
        details["warnings"] = warnings[:MAX_WARNINGS]
        details["llm_seconds"] = round(time.monotonic() - started, 3)
        return RefineOutput(
            segments=segments,
            entities=entities,
            speaker_names=names,
            speaker_roles=roles,
            summary=summary,
            details=details,
        )

    def _cleaned(
        self,
        transcript: Transcript,
        config: RefineConfig,
        entities: list[Entity] | None,
        warnings: list[str],
        details: dict[str, Any],
    ) -> tuple[list[Segment], list[Entity] | None]:
        """Cleanup's segments and the entities re-pointed at them; counts go into `details`."""
        protected = _protected_words(transcript, entities or [])
        answers: dict[int, str] = {}
        failed_batches = 0
        for batch in _batches(transcript.segments, self.settings.llm_max_segment_chars):
            try:
                answers.update(self._cleanup(batch, config.no_verbatim))
            except _BadAnswer:
                failed_batches += 1
        results: list[SegmentResult] = []
        for i, segment in enumerate(transcript.segments):
            result = clean_segment(
                segment,
                answers.get(i),
                no_verbatim=config.no_verbatim,
                max_change=MAX_CHANGE,
                protected=protected.get(i, frozenset()),
            )
            if not result.accepted and segment.text.strip():
                warnings.append(f"segment {segment.id}: {result.reason}")
            results.append(result)
        segments = [r.segment for r in results]
        old_words = sum(len(s.words) for s in transcript.segments)
        new_words = [w for s in segments for w in s.words]
        details.update(
            {
                "no_verbatim": config.no_verbatim,
                "segments_cleaned": sum(r.accepted for r in results),
                "segments_kept": sum(not r.accepted for r in results if r.segment.text.strip()),
                "failed_requests": failed_batches,
                "words_removed": old_words - sum(not w.generated for w in new_words),
                "words_generated": sum(w.generated for w in new_words),
            }
        )
        if entities is not None:
            entities = repoint_entities(entities, transcript.segments, results, transcript.words)
        return segments, entities

    # --- requests ---------------------------------------------------------------------

    def _cleanup(self, batch: list[tuple[int, Segment]], no_verbatim: bool) -> dict[int, str]:
        system = CLEANUP_PROMPT + (NO_VERBATIM_PROMPT if no_verbatim else "")
        request = {"segments": [{"id": i, "text": s.text.strip()} for i, s in batch]}
        example_out = EXAMPLE_OUT_NV if no_verbatim else EXAMPLE_OUT
        chars = sum(len(s.text) for _, s in batch)
        content = self._chat(
            [
                {"role": "system", "content": system},
                {"role": "user", "content": json.dumps(EXAMPLE_IN)},
                {"role": "assistant", "content": json.dumps(example_out)},
                {"role": "user", "content": json.dumps(request, ensure_ascii=False)},
            ],
            schema=CLEANUP_SCHEMA,
            max_tokens=chars // 2 + 40 * len(batch) + 64,
        )
        answer = _parse(content, _CleanupAnswer)
        wanted = {i for i, _ in batch}
        # Ids the model invented or repeated are ignored; the first answer for an id counts.
        out: dict[int, str] = {}
        for item in answer.segments:
            if item.id in wanted and item.id not in out:
                out[item.id] = item.text
        return out

    def _speaker_names(self, transcript: Transcript) -> dict[str, str]:
        lines, size = [], 0
        for s in transcript.segments:
            if not s.speaker or not s.text.strip():
                continue
            line = f"{s.speaker}: {s.text.strip()}"
            if size + len(line) > NAMING_CHARS:
                break
            lines.append(line)
            size += len(line) + 1
        if not lines:
            return {}
        try:
            answer = _parse(
                self._chat(
                    [{"role": "system", "content": NAMING_PROMPT}, {"role": "user", "content": "\n".join(lines)}],
                    schema=NAMING_SCHEMA,
                    max_tokens=200,
                ),
                _NamingAnswer,
            )
        except _BadAnswer:
            return {}
        said = transcript.text.lower()
        names: dict[str, str] = {}
        for item in answer.speakers:
            name = " ".join(item.name.split())
            # Only ids the transcript has, and only names that are actually said in it.
            if item.id in transcript.speakers and item.id not in names and 0 < len(name) <= 60:
                if re.search(rf"\b{re.escape(name.lower())}\b", said):
                    names[item.id] = name
        return names

    def _speaker_roles(self, transcript: Transcript) -> tuple[dict[str, str], str | None]:
        """The agent and the customer among the transcript's speakers, and why not (a refusal).

        The model sees neutral labels (A, B, ...) and is asked twice, the second time with the
        labels swapped; only the same pair of speakers both times counts. A model that answers
        from the labels or their order rather than from what is said is refused, not trusted
        (SmolLM2-135M names "A" the agent whatever A says)."""
        turns: list[tuple[str, str]] = []
        size = 0
        for s in transcript.segments:
            if not s.speaker or not s.text.strip():
                continue
            if turns and size + len(s.text) > ROLES_CHARS:
                break
            turns.append((s.speaker, s.text.strip()))
            size += len(s.text) + 4
        ids = list(dict.fromkeys(speaker for speaker, _ in turns))[: len(LABELS)]
        if len(ids) < 2:
            # Not a refusal: there is no conversation to tell an agent from a customer in.
            return {}, None
        answers = []
        for labels in (LABELS[: len(ids)], LABELS[: len(ids)][::-1]):
            label = dict(zip(ids, labels, strict=True))
            lines = [f"{label[speaker]}: {text}" for speaker, text in turns if speaker in label]
            try:
                answer = _parse(
                    self._chat(
                        [{"role": "system", "content": ROLES_PROMPT}, {"role": "user", "content": "\n".join(lines)}],
                        schema=roles_schema(sorted(labels)),
                        max_tokens=40,
                    ),
                    _RolesAnswer,
                )
            except _BadAnswer as exc:
                return {}, str(exc)[:200]
            speaker = {v: k for k, v in label.items()}
            agent, customer = answer.agent.strip(), answer.customer.strip()
            # Servers without structured output may answer anything: only two distinct speakers count.
            if agent not in speaker or customer not in speaker:
                return {}, f"the answer names speakers the transcript lacks: agent={agent!r}, customer={customer!r}"
            if agent == customer:
                return {}, f"the answer gives {speaker[agent]} both roles"
            answers.append((speaker[agent], speaker[customer]))
        if answers[0] != answers[1]:
            return {}, f"the answer changed when the speakers' labels were swapped: {answers[0]} then {answers[1]}"
        agent, customer = answers[0]
        return {agent: "agent", customer: "customer"}, None

    def _summary(self, segments: list[Segment]) -> str | None:
        text = " ".join(s.text.strip() for s in segments if s.text.strip())[:SUMMARY_CHARS]
        if not text:
            return None
        try:
            content = self._chat(
                [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": text}], schema=None, max_tokens=300
            )
        except _BadAnswer:
            return None
        return content.strip() or None

    def _chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, max_tokens: int) -> str:
        if self._client is None:
            self.load()
        assert self._client is not None
        body: dict[str, Any] = {
            "model": self.settings.llm_model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if schema is not None:
            # Structured output (OpenAI, vLLM, llama.cpp's server, Ollama): the server constrains
            # the answer to the schema. Servers without it answer 400; then plain JSON is asked.
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        try:
            response = self._client.post("/chat/completions", json=body)
            if response.status_code in (400, 422) and schema is not None:
                body.pop("response_format")
                response = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"the LLM server at {self.settings.llm_base_url} is unreachable: {exc}", retryable=True) from exc
        if response.status_code >= 500 or response.status_code in (401, 403, 404, 429):
            retryable = response.status_code >= 500 or response.status_code == 429
            raise EngineError(f"the LLM server answered {response.status_code}: {response.text[:300]}", retryable=retryable)
        if response.status_code != 200:
            raise _BadAnswer(f"status {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _BadAnswer(f"not a chat completion: {exc}") from exc
        if not isinstance(content, str):
            raise _BadAnswer("no text content")
        return content


class _BadAnswer(Exception):
    """The model's answer cannot be used (the segments concerned keep their original)."""


def _parse(content: str, model: type[M]) -> M:
    text = content.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        return model.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise _BadAnswer(f"invalid JSON answer: {exc}") from exc


def _batches(segments: list[Segment], max_chars: int) -> list[list[tuple[int, Segment]]]:
    """Consecutive segments with text, about `max_chars` of it per batch (at least one segment)."""
    batches: list[list[tuple[int, Segment]]] = []
    current: list[tuple[int, Segment]] = []
    size = 0
    for i, s in enumerate(segments):
        if not s.text.strip():
            continue
        if current and size + len(s.text) > max_chars:
            batches.append(current)
            current, size = [], 0
        current.append((i, s))
        size += len(s.text)
    if current:
        batches.append(current)
    return batches


def _protected_words(transcript: Transcript, entities: list[Any]) -> dict[int, frozenset[int]]:
    """Per segment number: positions of the words inside a detected entity."""
    inside = {i for e in entities for i in range(e.first_word, e.last_word + 1)}
    index = {id(w): i for i, w in enumerate(transcript.words)}
    out: dict[int, frozenset[int]] = {}
    for n, s in enumerate(transcript.segments):
        positions = frozenset(p for p, w in enumerate(s.words) if index.get(id(w)) in inside)
        if positions:
            out[n] = positions
    return out
