#!/usr/bin/env bash
# make setup: Debian's Chromium for tests/test_web.py (Playwright drives it; Playwright's own browser download
# is not used). Idempotent; never fails setup: without apt-get or root, the browser test skips and says why.
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "chromium not installed (needs apt-get as root): the browser test in tests/test_web.py will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing chromium with apt-get (for the browser test)"
if ! apt-get install -y -q chromium >/tmp/face2anime-apt.log 2>&1; then
  apt-get update -q >>/tmp/face2anime-apt.log 2>&1
  apt-get install -y -q chromium >>/tmp/face2anime-apt.log 2>&1 \
    || echo "apt-get install chromium failed (/tmp/face2anime-apt.log): the browser test in tests/test_web.py will skip"
fi
exit 0
