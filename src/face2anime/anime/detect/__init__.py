"""Anime faces and hysts' 28 points per extracted frame: the `hysts` detector or a `labels` table."""
