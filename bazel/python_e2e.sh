#!/bin/sh
# Runs a Python e2e test (first argument) with Debian's /usr/bin/python3, from
# the test's runfiles directory, which is the source root for --source_dir.
exec /usr/bin/python3 "$@"
