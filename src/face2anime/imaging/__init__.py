"""Image conventions shared by every phase: the one grayscale, the one uint8 <-> tensor pair."""
