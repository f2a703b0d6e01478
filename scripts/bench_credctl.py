#!/usr/bin/env python3
"""Whole-process time of `credctl list` against `git credential fill`.

Starts a credbrokerd and a git credential-cache daemon in a temporary
directory, then runs the two commands in turn, one after the other, for
--runs rounds (after --warmup rounds), each round starting with the other
command and each command after a pause of --gap_ms, so that both see the
same state of the machine; a block of one command followed by a block of
the other is at the mercy of a shared machine's drift. Both are started the
same way (fork and exec from this script, stdout to /dev/null); git reads
its query from a pipe. Run the binaries as the linker left them: a fresh
`cp` of credctl runs faster than the same bytes read back from disk
(docs/BENCHMARKS.md, "credctl process time"). Prints the median, mean,
10th and 90th percentiles of each and the ratio of the medians.

  scripts/bench_credctl.py [--build build-bench] [--runs 300]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"{path} did not appear within {seconds} s")
        time.sleep(0.02)


def timed(argv, env, gap_s, stdin_bytes=None):
    time.sleep(gap_s)
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL,
        stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL)
    if stdin_bytes is not None:
        proc.stdin.write(stdin_bytes)
        proc.stdin.close()
    proc.wait()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited with {proc.returncode}")
    return elapsed * 1e3


def describe(name, times):
    times = sorted(times)
    n = len(times)
    return (f"| {name} | {n} | {statistics.median(times):.2f} ms | "
            f"{statistics.mean(times):.2f} ms | {times[n // 10]:.2f} ms | "
            f"{times[9 * n // 10]:.2f} ms |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build-bench",
                        help="CMake build directory with credctl and credbrokerd")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--gap_ms", type=float, default=10,
                        help="pause before each command, so that what the previous "
                             "one left the servers to do (closing its connection) "
                             "is not charged to it")
    args = parser.parse_args()

    credctl = os.path.join(args.build, "client/cli/credctl")
    daemon = os.path.join(args.build, "broker/credbrokerd")
    for path in (credctl, daemon):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found: build it first "
                     f"(cmake --build {args.build} --target credctl credbrokerd)")
    if shutil.which("git") is None:
        sys.exit("git not found: install git (its credential-cache is the comparison)")

    tmp = tempfile.mkdtemp(prefix="credctl-bench-")
    data = os.path.join(tmp, "data")
    sock = os.path.join(tmp, "broker.sock")
    cache_sock = os.path.join(tmp, "git-cache.sock")
    gitconfig = os.path.join(tmp, "gitconfig")
    with open(gitconfig, "w") as f:
        f.write("[credential]\n\thelper = cache --timeout 86400 "
                f"--socket {cache_sock}\n")
    env = dict(os.environ, GIT_CONFIG_GLOBAL=gitconfig, GIT_CONFIG_NOSYSTEM="1")

    broker = subprocess.Popen([daemon, "--data_dir", data, "--listen", f"unix:{sock}",
                               "--key_source=file", "--approval_factor=none"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(sock, 30)
        wait_for(os.path.join(data, "approver.token"), 30)
        subprocess.run(["git", "credential", "approve"], env=env, check=True,
                       input=b"protocol=https\nhost=example.com\n"
                             b"username=bench\npassword=not-a-secret\n\n")
        query = b"protocol=https\nhost=example.com\n\n"
        git = ["git", "credential", "fill"]
        cli = [credctl, "--broker", f"unix:{sock}", "--token_file",
               os.path.join(data, "approver.token"), "list"]
        git_times, cli_times = [], []
        for i in range(args.warmup + args.runs):
            # Which goes first alternates, so neither always follows the other.
            if i % 2:
                c = timed(cli, env, args.gap_ms / 1e3)
                g = timed(git, env, args.gap_ms / 1e3, query)
            else:
                g = timed(git, env, args.gap_ms / 1e3, query)
                c = timed(cli, env, args.gap_ms / 1e3)
            if i >= args.warmup:
                git_times.append(g)
                cli_times.append(c)
        print("| command | runs | median | mean | p10 | p90 |")
        print("|---|---:|---:|---:|---:|---:|")
        print(describe("`git credential fill` (credential-cache)", git_times))
        print(describe("`credctl list`", cli_times))
        print(f"\ncredctl / git, medians: "
              f"{statistics.median(cli_times) / statistics.median(git_times):.2f}x")
    finally:
        broker.terminate()
        broker.wait()
        subprocess.run(["git", "credential-cache", "--socket", cache_sock, "exit"],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
