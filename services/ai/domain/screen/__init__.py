"""Prompt-injection screening in layers: normalise, decode, patterns, model, cascade."""
