#!/usr/bin/env python3
"""Check that generated Toss files follow the record format (the generator's own test).

    python3 bench/check_toss.py FILE.dat [FILE.dat ...]

For each file: decodes strictly (euc-kr when the file has CRLF line ends or is not valid
UTF-8), then checks every line: exactly 12 `;`-separated fields, known paytypes,
consistent financecode/financename pairs, transaction = mid + 19 digits whose first 14
are a real time not after the paydate, oid shape, amount 1,000..2,000,000, useescrow
Y/N, paydate a real time within the file's business date, authnumber 8 digits for cards
and `0` otherwise, status 10 (AUTH) / 20 (REV), field lengths within the seed's column
sizes (EUC-KR bytes), unique transaction numbers and primary keys. Exits 1 on the first
file with a problem. Standard library only.
"""
from __future__ import annotations

import collections
import datetime as dt
import os
import re
import sys

sys.dont_write_bytecode = True   # no bench/__pycache__ next to the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_toss import BANKS, CARDS, PAYTYPES  # noqa: E402

NAME = re.compile(r"^(?P<mid>[^_]+)_(?P<kind>AUTH|REV)_(?P<date>\d{8})\.dat$")
OID = re.compile(r"^Toss_(\d{14})_([a-z0-9]{1,15})$")
LIMITS = {0: 15, 1: 6, 2: 24, 3: 64, 4: 10, 5: 10, 6: 15, 10: 8, 11: 2}


def ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y%m%d%H%M%S")


def check(path: str) -> list[str]:
    errs: list[str] = []
    m = NAME.match(os.path.basename(path))
    if not m:
        return [f"{path}: file name is not {{mid}}_{{AUTH|REV}}_{{yyyymmdd}}.dat"]
    mid, kind, date = m["mid"], m["kind"], m["date"]
    day = dt.datetime.strptime(date, "%Y%m%d")
    raw = open(path, "rb").read()
    crlf = b"\r\n" in raw[:4096]
    enc = "euc-kr" if crlf else "utf-8"
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as e:
        return [f"{path}: does not decode as {enc}: {e}"]
    if raw and not raw.endswith(b"\n"):
        errs.append(f"{path}: no final newline")
    eol = "\r\n" if crlf else "\n"
    lines = text.split(eol)
    if lines and lines[-1] == "":
        lines.pop()
    if any("\r" in l or "\n" in l for l in lines):
        errs.append(f"{path}: mixed line ends")
    cards = {c: n for c, n, _ in CARDS}
    banks = {c: n for c, n, _ in BANKS}
    kinds = {p: s for p, _, s in PAYTYPES}
    status = "10" if kind == "AUTH" else "20"
    trx = set()
    keys = set()
    paytypes = collections.Counter()
    prev = None
    for no, line in enumerate(lines, 1):
        f = line.split(";")
        where = f"{path}:{no}"
        if len(f) != 12:
            errs.append(f"{where}: {len(f)} fields")
            continue
        for i, lim in LIMITS.items():
            if len(f[i].encode("euc-kr")) > lim:
                errs.append(f"{where}: field {i + 1} longer than {lim} bytes: {f[i]!r}")
        if f[0] != mid:
            errs.append(f"{where}: mid {f[0]!r} != file's {mid!r}")
        pt = f[1]
        paytypes[pt] += 1
        src = kinds.get(pt)
        if src is None:
            errs.append(f"{where}: unknown paytype {pt}")
        elif src == "card":
            if cards.get(f[4]) != f[5]:
                errs.append(f"{where}: card {f[4]!r}/{f[5]!r} inconsistent")
            if not re.fullmatch(r"\d{8}", f[10]):
                errs.append(f"{where}: card authnumber {f[10]!r}")
        elif src == "bank":
            if banks.get(f[4]) != f[5]:
                errs.append(f"{where}: bank {f[4]!r}/{f[5]!r} inconsistent")
            if f[10] != "0":
                errs.append(f"{where}: non-card authnumber {f[10]!r}")
        else:
            if f[4] or f[5] or f[10] != "0":
                errs.append(f"{where}: {pt} should have empty finance fields and authnumber 0")
        t = f[2]
        if not (t.startswith(mid) and re.fullmatch(r"\d{19}", t[len(mid):])):
            errs.append(f"{where}: transaction {t!r} is not mid + 19 digits")
            continue
        try:
            t_auth = ts(t[len(mid):len(mid) + 14])
            pay = ts(f[9])
        except ValueError as e:
            errs.append(f"{where}: bad date: {e}")
            continue
        if pay.date() != day.date():
            errs.append(f"{where}: paydate {f[9]} not on {date}")
        if t_auth > pay:
            errs.append(f"{where}: approval {t_auth} after paydate {pay}")
        if kind == "AUTH" and t_auth != pay:
            errs.append(f"{where}: AUTH transaction time != paydate")
        if prev is not None and pay > prev:
            errs.append(f"{where}: not newest first")
        prev = pay
        om = OID.match(f[3])
        if not om:
            errs.append(f"{where}: oid {f[3]!r}")
        else:
            try:
                if ts(om[1]) > t_auth:
                    errs.append(f"{where}: order after approval")
            except ValueError:
                errs.append(f"{where}: oid time {om[1]!r}")
        if not re.fullmatch(r"[a-z0-9]{1,15}", f[6]):
            errs.append(f"{where}: buyerid {f[6]!r}")
        if not (f[7].isdigit() and 1000 <= int(f[7]) <= 2_000_000):
            errs.append(f"{where}: amount {f[7]!r}")
        if f[8] not in ("Y", "N"):
            errs.append(f"{where}: useescrow {f[8]!r}")
        if f[11] != status:
            errs.append(f"{where}: status {f[11]!r}")
        if t in trx:
            errs.append(f"{where}: duplicate transaction {t}")
        trx.add(t)
        key = (f[0], f[1], f[2], f[3])
        if key in keys:
            errs.append(f"{where}: duplicate key")
        keys.add(key)
        if len(errs) > 20:
            errs.append("... (stopping)")
            break
    n = len(lines)
    mix = ", ".join(f"{p} {c / max(n, 1):.1%}" for p, c in paytypes.most_common())
    print(f"{path}: {n} rows, {enc}, {'CRLF' if crlf else 'LF'}, {len(trx)} unique transactions; {mix}"
          f"{'' if not errs else f'; {len(errs)} PROBLEMS'}")
    return errs


def main(argv: list[str]) -> int:
    bad = 0
    for p in argv:
        errs = check(p)
        for e in errs:
            print("  " + e)
        bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
