"""llm-cleanup: the refine stage through any OpenAI-compatible chat-completions server."""
