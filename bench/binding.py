"""Binding overhead, the Python side (ctypes binding in bindings/python):
the same calls as bench/binding.c, on the inputs bench_verify --fixtures
wrote. Run with INTEG_LIBRARY pointing at the release build.

    python3 bench/binding.py FIXTURE_DIR REPS
Output: binding lang=python call=... rep=R calls_per_s=X
"""
import json
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "bindings", "python"))
import integrations  # noqa: E402


def main() -> None:
    fixtures, reps = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(fixtures, "standard-1024.json")) as f:
        fx = json.load(f)
    with open(os.path.join(fixtures, "standard-1024.body"), "rb") as f:
        body = f.read()
    headers = list(fx["headers"].items())
    ctx = integrations.Context(store="sqlite::memory:", master_key=integrations.generate_master_key())
    calls = {
        "definition_get": lambda: ctx.definition("hubspot-crm"),
        "webhook_verify": lambda: integrations.verify_webhook(
            "standard", fx["secret"], method="POST", url="", headers=headers, body=body
        ),
    }
    for name, fn in calls.items():
        iters = 0
        for rep in range(-1, reps):
            n = 100 if rep < 0 else iters
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            r = n / (time.perf_counter() - t0)
            if rep < 0:
                iters = int(r * 0.25) + 1
            else:
                print(f"binding lang=python call={name} rep={rep} calls_per_s={r:.0f}", flush=True)
    ctx.close()


main()
