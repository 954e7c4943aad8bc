"""Seconds to parse a form body whose key holds a run of unclosed brackets (attack 8, finding 1).

    python bench/form_keys.py [--max 80000]

`emails[]=a@example.com&x` + `[` * n + `=1`, parsed by `mockserver.forms.parse_form` in this
process, for n = 10k, 20k, 40k, ... up to --max, and the same with `[a` * n. The ratio column is
against the 10k row of the same pattern: linear parsing doubles it as n doubles (the former regex
splitter, timed alongside up to --former-max, quadrupled it: 14 s at 80k over HTTP).
"""

from __future__ import annotations

import argparse
import re
import time

from mockserver.forms import parse_form

FORMER_SUBKEY = re.compile(r"\[([^\]]*)\]")


def former_split(body: str) -> None:
    """What the former splitter did with the body's keys: a regex looking for `]` at every `[`."""
    for pair in body.split("&"):
        name = pair.partition("=")[0]
        head = name.partition("[")[0]
        list(FORMER_SUBKEY.finditer(name, len(head)))


def seconds(parse, body: str, repeat: int) -> float:
    """The best of `repeat` runs: the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        parse(body)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=80_000, help="largest number of brackets")
    parser.add_argument("--former-max", type=int, default=20_000, help="the same for the regex")
    args = parser.parse_args()
    print("| pattern | n | body bytes | seconds | ratio to n=10k | former regex s | its ratio |")
    print("|---|---|---|---|---|---|---|")
    for unit in ("[", "[a"):
        base, former_base, n = 0.0, 0.0, 10_000
        while n <= args.max:
            body = "emails[]=a@example.com&x" + unit * n + "=1"
            took = seconds(parse_form, body, repeat=20)
            base = base or took
            former = "| — | —"
            if n <= args.former_max:
                former_took = seconds(former_split, body, repeat=1)
                former_base = former_base or former_took
                former = f"| {former_took:.3f} | {former_took / former_base:.2f}"
            print(f"| `{unit}` | {n} | {len(body)} | {took:.6f} | {took / base:.2f} {former} |")
            n *= 2


if __name__ == "__main__":
    main()
