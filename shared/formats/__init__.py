"""External formats of the canonical transcript, each a pure function of `Transcript`."""

# What `GET /v1/audio/transcriptions/{id}/export/{format}` renders, with each one's media type.
EXPORT_FORMATS = {
    "srt": "application/x-subrip",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
