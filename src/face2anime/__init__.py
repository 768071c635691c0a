"""face2anime: photos of faces to anime faces, with a landmark loss through a frozen anime DAN."""

__version__ = "0.1.0"
