"""Audio redaction (the redact stage): the original upload with every detected entity silenced or beeped."""
