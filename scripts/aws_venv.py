#!/usr/bin/env python3
"""Installs the AWS tooling into one virtualenv and prints its bin directory.

    python3 scripts/aws_venv.py cargo-lambda [cfn-lint] [aws-sam-cli]

The venv is <target dir>/aws-venv ($CARGO_TARGET_DIR or ./target), so `cargo clean` removes it.
Everything comes from PyPI (cargo-lambda's wheel ships its binary and pulls `ziglang`, which
cargo-lambda needs on PATH). Safe to run concurrently: an exclusive lock guards the install,
and tools already present are not reinstalled. Used by scripts/aws-checks.sh (CI) and by
tests/lambda_e2e.rs.
"""
import fcntl
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# PyPI requirement and the executable that shows it is installed.
TOOLS = {
    "cargo-lambda": ("cargo-lambda>=1.9,<1.10", "cargo-lambda"),
    "cfn-lint": ("cfn-lint>=1.58,<2", "cfn-lint"),
    "aws-sam-cli": ("aws-sam-cli>=1.156,<2", "sam"),
}


def main(names):
    unknown = [n for n in names if n not in TOOLS]
    if unknown or not names:
        sys.exit(f"usage: aws_venv.py {{{'|'.join(TOOLS)}}}... (unknown: {unknown})")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    home = os.path.join(os.path.abspath(target), "aws-venv")
    bindir = os.path.join(home, "bin")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "aws-venv.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(bindir, "python")):
            print(f"creating {home}", file=sys.stderr)
            venv.EnvBuilder(with_pip=True, clear=True).create(home)
        missing = [TOOLS[n][0] for n in names if not os.path.exists(os.path.join(bindir, TOOLS[n][1]))]
        if missing:
            print(f"pip install {' '.join(missing)} into {home}", file=sys.stderr)
            subprocess.run(
                [os.path.join(bindir, "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", *missing],
                check=True,
                stdout=sys.stderr,
            )
    print(bindir)


if __name__ == "__main__":
    main(sys.argv[1:])
