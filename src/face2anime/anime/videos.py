"""Which files are videos: one listing rule shared by the stage, its tests and its benchmark."""

from __future__ import annotations

from pathlib import Path

from face2anime.errors import UserError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv", ".flv"}
)
# Files a user may keep next to the videos (documentation; hidden files such as .gitignore): never
# videos, never reported. Same rule as the photo folder's.
_README_PREFIX = "readme"


def list_videos(folder: Path | str) -> tuple[list[Path], list[str]]:
    """Videos in `folder` (not recursive, sorted by name) and the names of other files found there.

    The second list is reported by the stage so that a file with an unexpected extension is never
    dropped silently. Raises UserError when the folder is missing or holds no video.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"video folder {folder}/ not found: create it and put video files in it")
    videos: list[Path] = []
    others: list[str] = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name.lower().startswith(_README_PREFIX):
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(path)
        else:
            others.append(path.name)
    if not videos:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise UserError(f"no video files in {folder}/ (looked for {exts}): add videos or set extract_frames.source: demo")
    stems: dict[str, str] = {}
    for path in videos:
        if path.stem in stems:
            raise UserError(
                f"videos {stems[path.stem]} and {path.name} in {folder}/ share the name stem '{path.stem}' "
                "(frame ids are built from it): rename one"
            )
        stems[path.stem] = path.name
    return videos, others
