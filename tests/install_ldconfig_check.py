#!/usr/bin/env python3
"""scripts/install-ldconfig decides right, and never runs the real ldconfig.

usage: install_ldconfig_check.py PATH/TO/install-ldconfig

A fake `ldconfig` first on PATH reports one temporary directory as searched
(for `-N -X -v`) and records any other call. Checked:
- DESTDIR set: nothing runs, nothing printed;
- a directory ldconfig does not search, or a missing one: nothing runs;
- a searched directory: the cache update runs if we are root, not otherwise;
- nothing printed on stdout or stderr in any of these.
"""
import os
import subprocess
import sys
import tempfile


def main() -> int:
    script = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        known = os.path.join(tmp, "known-lib")
        unknown = os.path.join(tmp, "other-lib")
        bindir = os.path.join(tmp, "bin")
        log = os.path.join(tmp, "ldconfig.log")
        for d in (known, unknown, bindir):
            os.mkdir(d)
        fake = os.path.join(bindir, "ldconfig")
        with open(fake, "w", encoding="utf-8") as f:
            f.write(
                "#!/bin/sh\n"
                'if [ "$*" = "-N -X -v" ]; then\n'
                f'  echo "{known}: (from /etc/ld.so.conf.d/test.conf:1)"\n'
                '  printf "\\tlibfoo.so.1 -> libfoo.so.1.0\\n"\n'
                "  exit 0\n"
                "fi\n"
                f'echo "called: $*" >> "{log}"\n'
            )
        os.chmod(fake, 0o755)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        env.pop("DESTDIR", None)
        is_root = os.geteuid() == 0
        on_linux = os.uname().sysname == "Linux"

        def case(name, libdir, extra_env, expect_run):
            nonlocal failures
            if os.path.exists(log):
                os.unlink(log)
            p = subprocess.run([script, libdir], env=dict(env, **extra_env), capture_output=True, text=True)
            ran = os.path.exists(log)
            ok = p.returncode == 0 and p.stdout == "" and p.stderr == "" and ran == expect_run
            print(f"{'ok  ' if ok else 'FAIL'} {name}: rc={p.returncode} ran_ldconfig={ran} (want {expect_run})"
                  + (f" stdout={p.stdout!r} stderr={p.stderr!r}" if p.stdout or p.stderr else ""))
            failures += 0 if ok else 1

        case("DESTDIR set", known, {"DESTDIR": os.path.join(tmp, "stage")}, False)
        case("directory ldconfig does not search", unknown, {}, False)
        case("missing directory", os.path.join(tmp, "missing"), {}, False)
        case("no argument", "", {}, False)
        case("searched directory" + ("" if is_root else " (not root)"), known, {}, is_root and on_linux)
        # The same directory spelled through a symlink is still the one searched.
        alias = os.path.join(tmp, "alias")
        os.symlink(known, alias)
        case("searched directory via a symlink", alias, {}, is_root and on_linux)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
