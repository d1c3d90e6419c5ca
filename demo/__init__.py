"""Embedded demo task: synthetic speech-like data and a config pair that trains in seconds."""
