"""The synthetic demo episode: seeded anime characters, shots and camera moves, with exact ground truth.

`character` (appearance), `face` (one face's drawing and landmarks), `contour` (the true 17-point
contour), `draw` (anti-aliased rendering), `background`, `episode` (shots, rendering, truth table),
`preview` (contact sheet).
"""
