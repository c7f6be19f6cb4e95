"""Document renderings of a transcript: the ElevenLabs `additional_formats`.

Each format is a pure function of the `Transcript` and its `ExportOptions`: segmented JSON,
HTML, DOCX (python-docx), PDF (fpdf2), and SRT/TXT through `shared.formats.text`. Text
is split into blocks by `shared.formats.text.build_cues`, so silence, duration and length
limits mean the same thing in every format.
"""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.formats.text import build_cues, to_srt, to_txt, vtt_timestamp
from shared.transcript import Segment, Transcript, Word

FormatName = Literal["segmented_json", "docx", "pdf", "html", "txt", "srt"]

# ElevenLabs' per-format defaults (wire facts 1.5); a key the client leaves out gets these.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "srt": {
        "include_speakers": False,
        "max_characters_per_line": 42,
        "segment_on_silence_longer_than_s": 0.8,
        "max_segment_duration_s": 4.0,
        "max_segment_chars": 84,
    },
    "txt": {"max_characters_per_line": 100},
}

# (file_extension, content_type, is_base64_encoded)
_MEDIA: dict[str, tuple[str, str, bool]] = {
    "segmented_json": ("json", "application/json", False),
    "html": ("html", "text/html", False),
    "txt": ("txt", "text/plain", False),
    "srt": ("srt", "application/x-subrip", False),
    "docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
    "pdf": ("pdf", "application/pdf", True),
}

# A Unicode TrueType font makes PDFs of any script; without one, fpdf2's core Helvetica
# covers Latin-1 only and other characters print as "?".
PDF_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
)


class ExportOptions(BaseModel):
    """One item of `additional_formats`, tagged by `format`. Unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    format: FormatName
    include_speakers: bool = True
    include_timestamps: bool = True
    segment_on_silence_longer_than_s: float | None = Field(default=None, gt=0)
    max_segment_duration_s: float | None = Field(default=None, gt=0)
    max_segment_chars: int | None = Field(default=None, ge=1)
    max_characters_per_line: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _format_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("format"), str):
            data = {**_DEFAULTS.get(data["format"], {}), **data}
        return data


@dataclass(frozen=True)
class Block:
    start: float
    end: float
    speaker: str | None
    text: str
    words: list[Word]


def blocks(t: Transcript, options: ExportOptions) -> list[Block]:
    """The transcript cut into blocks at segment and speaker boundaries and the options' limits."""
    cues = build_cues(
        t,
        max_line_chars=10**9,  # no line wrapping here: blocks are paragraphs
        max_lines=1,
        include_speakers=False,
        max_segment_duration_s=options.max_segment_duration_s,
        max_segment_chars=options.max_segment_chars,
        segment_on_silence_longer_than_s=options.segment_on_silence_longer_than_s,
    )
    # A word belongs to the cue that spans it with the same speaker (as build_cues labels it).
    labelled = [(w, w.speaker or s.speaker) for s in t.segments for w in s.words if w.text.strip()]
    result = []
    for cue in cues:
        words = [w for w, speaker in labelled if w.start >= cue.start and w.end <= cue.end and speaker == cue.speaker]
        result.append(Block(cue.start, cue.end, cue.speaker, cue.text, words))
    return result


def resegmented(t: Transcript, options: ExportOptions) -> Transcript:
    """A copy of `t` whose segments are the blocks, for renderers that work per segment."""
    segments = [
        Segment(id=i, start=b.start, end=b.end, text=b.text, words=b.words, speaker=b.speaker)
        for i, b in enumerate(blocks(t, options))
    ]
    return t.model_copy(update={"segments": segments})


def _prefix(block: Block, options: ExportOptions) -> str:
    parts = []
    if options.include_timestamps:
        parts.append(f"[{vtt_timestamp(block.start)} - {vtt_timestamp(block.end)}]")
    if options.include_speakers and block.speaker:
        parts.append(f"{block.speaker}:")
    return " ".join(parts)


# --- renderers --------------------------------------------------------------------


def to_segmented_json(t: Transcript, options: ExportOptions) -> str:
    segments = []
    for b in blocks(t, options):
        segment: dict[str, Any] = {"text": b.text}
        if options.include_timestamps:
            segment.update(start=b.start, end=b.end)
        if options.include_speakers:
            segment["speaker"] = b.speaker
        words = []
        for w in b.words:
            word: dict[str, Any] = {"text": w.text}
            if options.include_timestamps:
                word.update(start=w.start, end=w.end)
            if options.include_speakers:
                word["speaker"] = w.speaker
            words.append(word)
        segment["words"] = words
        segments.append(segment)
    return json.dumps({"segments": segments}, ensure_ascii=False)


def to_html(t: Transcript, options: ExportOptions) -> str:
    paragraphs = []
    for b in blocks(t, options):
        prefix = _prefix(b, options)
        label = f"<strong>{html.escape(prefix)}</strong> " if prefix else ""
        paragraphs.append(f"<p>{label}{html.escape(b.text)}</p>")
    body = "\n".join(paragraphs)
    return (
        '<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n<title>Transcript</title>\n</head>\n'
        "<body>\n<h1>Transcript</h1>\n{body}\n</body>\n</html>\n"
    ).format(lang=html.escape(t.language or "und"), body=body)


def to_docx(t: Transcript, options: ExportOptions) -> bytes:
    from docx import Document  # python-docx; imported here so plain-text users do not pay for lxml

    document = Document()
    document.add_heading("Transcript", level=1)
    for b in blocks(t, options):
        paragraph = document.add_paragraph()
        prefix = _prefix(b, options)
        if prefix:
            paragraph.add_run(prefix + " ").bold = True
        paragraph.add_run(b.text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def to_pdf(t: Transcript, options: ExportOptions) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    font = next((p for p in PDF_FONTS if p.is_file()), None)
    if font is not None:
        pdf.add_font("body", "", str(font))
        family = "body"

        def clean(text: str) -> str:
            return text
    else:
        family = "Helvetica"

        def clean(text: str) -> str:
            return text.encode("latin-1", "replace").decode("latin-1")

    pdf.set_font(family, size=16)
    pdf.cell(0, 10, "Transcript", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=11)
    for b in blocks(t, options):
        prefix = _prefix(b, options)
        pdf.multi_cell(0, 6, clean(f"{prefix} {b.text}" if prefix else b.text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def to_text(t: Transcript, options: ExportOptions) -> str:
    rendered = to_txt(
        resegmented(t, options), include_speakers=options.include_speakers, include_timestamps=options.include_timestamps
    )
    width = options.max_characters_per_line
    if width is None:
        return rendered
    lines = [
        wrapped for line in rendered.splitlines() for wrapped in (textwrap.wrap(line, width, break_long_words=False) or [""])
    ]
    return "\n".join(lines) + "\n" if lines else ""


def to_subrip(t: Transcript, options: ExportOptions) -> str:
    # SRT always carries timestamps, so include_timestamps has nothing to change here.
    return to_srt(
        t,
        max_line_chars=options.max_characters_per_line or 42,
        include_speakers=options.include_speakers,
        max_segment_duration_s=options.max_segment_duration_s,
        max_segment_chars=options.max_segment_chars,
        segment_on_silence_longer_than_s=options.segment_on_silence_longer_than_s,
    )


_RENDERERS: dict[str, Callable[[Transcript, ExportOptions], str | bytes]] = {
    "segmented_json": to_segmented_json,
    "html": to_html,
    "txt": to_text,
    "srt": to_subrip,
    "docx": to_docx,
    "pdf": to_pdf,
}


def render(t: Transcript, options: ExportOptions) -> dict[str, Any]:
    """One ElevenLabs `AdditionalFormatResponseModel`: binary formats come base64-encoded."""
    extension, content_type, binary = _MEDIA[options.format]
    content = _RENDERERS[options.format](t, options)
    if binary:
        assert isinstance(content, bytes), "binary formats render to bytes"
        content = base64.b64encode(content).decode("ascii")
    return {
        "requested_format": options.format,
        "file_extension": extension,
        "content_type": content_type,
        "is_base64_encoded": binary,
        "content": content,
    }
