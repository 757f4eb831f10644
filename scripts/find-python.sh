#!/usr/bin/env bash
# Print the path of a Python 3.12 interpreter, found the way a user's machine has it:
# `python3.12` on PATH if it runs, else pyenv's newest 3.12.x, else apt's python3.12 (installed
# when we are root on Debian/Ubuntu and it is offered).
set -euo pipefail

works() { "$1" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; }

if command -v python3.12 >/dev/null 2>&1 && works python3.12; then
  command -v python3.12
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for candidate in $(ls -d "$root"/versions/3.12* 2>/dev/null | sort -V -r); do
    if works "$candidate/bin/python3.12"; then
      echo "$candidate/bin/python3.12"
      exit 0
    fi
  done
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if apt-cache policy python3.12 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get install -y python3.12 python3.12-venv >&2
    command -v python3.12
    exit 0
  fi
fi
echo "Python 3.12 not found: put python3.12 on PATH (or install it with pyenv: pyenv install 3.12)" >&2
exit 1
