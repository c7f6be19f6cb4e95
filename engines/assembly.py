"""The transcript as the transcription stages left it: assembled from their outputs.

Merge builds the final transcript from it; the enrichment stages (detect, refine) read the
same assembly, so the word indices and times they report are the final transcript's.
Inputs by task name: `prepare`; `transcribe` (or `transcribe_ch{c}`, one per channel);
optionally `align` (refined word timestamps), `diarize` (speaker turns) or the integrated
engine's task (`whisperx`: all three in one).
"""

from __future__ import annotations

from engines.base import read_input
from engines.merge.speakers import assign_speakers, speaker_order
from shared.catalogue import ENGINES, Stage
from shared.contracts import AlignOutput, DiarizeOutput, IntegratedOutput, PrepareOutput, TaskMessage, TranscribeOutput
from shared.storage import ObjectStore
from shared.transcript import Segment, SpeakerMatch, StageInfo, Transcript

# Task names of integrated engines (whisperx-full's `whisperx`): one output holds several stages.
INTEGRATED_TASKS = frozenset(e.integrated_task for e in ENGINES.values() if e.integrated_task)


def transcript_from_inputs(store: ObjectStore, task: TaskMessage, warnings: list[str] | None = None) -> Transcript:
    """Read the transcription stages' outputs among `task`'s inputs and assemble them."""
    warnings = list(warnings or [])
    prepared = read_input(store, task, "prepare", PrepareOutput)
    aligned = read_input(store, task, "align", AlignOutput) if "align" in task.inputs else None
    diarized = read_input(store, task, "diarize", DiarizeOutput) if "diarize" in task.inputs else None
    integrated_task = next((name for name in task.inputs if name in INTEGRATED_TASKS), None)
    if integrated_task is not None:
        integrated = read_input(store, task, integrated_task, IntegratedOutput)
        transcribed = [integrated.transcribe]
        aligned, diarized = integrated.align, integrated.diarize
        warnings += integrated.warnings
    else:
        transcribed = [
            read_input(store, task, name, TranscribeOutput) for name in sorted(task.inputs) if name.startswith("transcribe")
        ]
    return assemble(prepared, transcribed, aligned=aligned, diarized=diarized, warnings=warnings)


def assemble(
    prepare: PrepareOutput,
    transcribed: list[TranscribeOutput],
    *,
    aligned: AlignOutput | None = None,
    diarized: DiarizeOutput | None = None,
    warnings: list[str] | None = None,
) -> Transcript:
    """Pure: stage outputs in, canonical transcript out.

    Outputs that carry a channel (per_channel mode) label their segments and words with
    that channel and the speaker `channel_{c}`. Alignment replaces the one transcription's
    segments (same words, refined times); diarization turns assign speakers to words.
    """
    if not transcribed:
        raise ValueError("merge needs at least one transcription")
    if (aligned or diarized) and len(transcribed) != 1:
        raise ValueError("alignment and diarization apply to a single (mixed-down) transcription")
    if aligned is not None:
        transcribed = [transcribed[0].model_copy(update={"segments": aligned.segments})]
    transcribed = sorted(transcribed, key=lambda t: -1 if t.channel is None else t.channel)

    segments = [_label(s, t.channel) for t in transcribed for s in t.segments]
    # Stable sort: within one channel the model's order is kept for equal start times.
    segments.sort(key=lambda s: (s.start, s.end))
    segments = [s.model_copy(update={"id": i}) for i, s in enumerate(segments)]
    if diarized is not None:
        segments = assign_speakers(segments, diarized.turns)
    words = sorted((w for s in segments for w in s.words), key=lambda w: (w.start, w.end))

    # Per channel: the first channel that has speech speaks for the language.
    source = next((t for t in transcribed if any(s.text for s in t.segments)), transcribed[0])
    speakers = [f"channel_{t.channel}" for t in transcribed if t.channel is not None]
    known: dict[str, SpeakerMatch] = {}
    if diarized is not None:
        speakers = speaker_order(diarized.turns)
        known = {s: m for s, m in diarized.matches.items() if s in speakers}

    return Transcript(
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        language=source.language,
        language_probability=source.language_probability,
        duration=prepare.duration,
        segments=segments,
        words=words,
        speakers=speakers,
        # Enrolled voices the diarizer recognised name their speakers (readers apply the names).
        speaker_names={s: m.name for s, m in known.items()},
        known_speakers=known,
        channels=prepare.channels,
        model=transcribed[0].model,
        stages=[
            StageInfo(
                stage=Stage.PREPARE,
                engine_id="prepare",
                details={
                    "channels": prepare.channels,
                    "original_sample_rate": prepare.original_sample_rate,
                    "original_format": prepare.original_format,
                },
            ),
            *(
                StageInfo(
                    stage=Stage.TRANSCRIBE,
                    engine_id=t.details.get("engine_id", "unknown"),
                    details={**t.details, "channel": t.channel},
                )
                for t in transcribed
            ),
            *(
                [StageInfo(stage=Stage.ALIGN, engine_id=aligned.details.get("engine_id", "unknown"), details=aligned.details)]
                if aligned
                else []
            ),
            *(
                [
                    StageInfo(
                        stage=Stage.DIARIZE,
                        engine_id=diarized.details.get("engine_id", "unknown"),
                        details={**diarized.details, "num_speakers": diarized.num_speakers},
                    )
                ]
                if diarized
                else []
            ),
        ],
        warnings=list(warnings or []),
    )


def _label(segment: Segment, channel: int | None) -> Segment:
    if channel is None:
        return segment
    speaker = f"channel_{channel}"
    words = [w.model_copy(update={"channel": channel, "speaker": speaker}) for w in segment.words]
    return segment.model_copy(update={"channel": channel, "speaker": speaker, "words": words})
