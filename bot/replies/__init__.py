"""The chat-agnostic reply model and its builders."""
