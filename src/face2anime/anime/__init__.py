"""The anime side: frames from videos, anime face detection, the 40-point table, crops, split, style set."""
