"""The photo side: photo files, dlib faces and crop views, the 40-point photo set, reading a split."""
