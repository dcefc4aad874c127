#!/usr/bin/env python3
"""Generate a realistic, seeded Toss Payments transaction file for benchmarking.

    python3 bench/gen_toss.py --rows 2000000 --kind AUTH --date 20070706 \
        --mid toss --seed 42 --encoding utf-8 --out bench/out/data

writes ``{out}/{mid}_{kind}_{yyyymmdd}.dat``: ``--rows`` records, 12 fields separated
by ``;``, no header, one record per line (LF for utf-8, CRLF for euc-kr, the way the
Korean legacy system writes its files), ending with a newline.

The record format is /work/shared/spec/toss-format.md; the records look like the seed's
own examples (``../shared/samples``):

    toss;SC0010;toss2007070623592792192;Toss_20070706235709_uytr120;11100;국민;uytr120;15000;N;20070706235927;30017594;10

Every record is valid: the file measures clean throughput, not rejection handling.
Choices made where the spec is silent (see also bench/README.md):

* paytype weights: card 62 %, transfer 15 %, virtual account 12 %, phone 10.5 %,
  culture / game gift certificate 0.3 % / 0.2 %.
* cards carry a 5-digit card-company code and an 8-digit authnumber (leading zeros
  kept); transfers and virtual accounts a bank code and ``0``; phone and gift
  certificates carry no finance code/name (empty fields, which the spec allows) and ``0``.
* transaction = mid + 19 digits = yyyyMMddHHmmss of the approval + 5 digits that are
  unique within that second, so transaction numbers never repeat in a file.
* oid = ``Toss_`` + order time (10 s – 10 min before the approval) + ``_`` + buyer id.
* AUTH: paydate is the approval time within the file's day. REV: refunddate is within the
  file's day; the original approval (transaction / oid times) is 0–30 days earlier.
* amounts 1,000 – 2,000,000 won, log-normal around ~30,000, rounded to 100 won
  (to 1,000 won above 100,000).
* useescrow ``Y`` for 3 % of rows; status ``10`` (AUTH) / ``20`` (REV).
* rows are ordered newest first, like the samples; traffic follows a daily curve
  (quiet at night, peaks at lunch and in the evening).

Same arguments (rows, kind, date, mid, seed) => same records, whatever the encoding.
Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import sys
import time

# ---- reference data ---------------------------------------------------------------

# (code, weight, financecode/financename source, authnumber style)
PAYTYPES = [
    ("SC0010", 620, "card"),      # credit card
    ("SC0030", 150, "bank"),      # account transfer
    ("SC0040", 120, "bank"),      # virtual account (deposit without bankbook)
    ("SC0060", 105, "none"),      # mobile phone
    ("SC0111", 3, "none"),        # culture gift certificate
    ("SC0112", 2, "none"),        # game gift certificate
]

# card companies: code, name, weight (rough market shares)
CARDS = [
    ("41000", "신한", 20),
    ("51000", "삼성", 18),
    ("11100", "국민", 17),
    ("61100", "현대", 15),
    ("31000", "비씨", 11),
    ("71100", "롯데", 10),
    ("21000", "하나", 9),
]

# banks: code, name, weight
BANKS = [
    ("4", "국민", 20),
    ("11", "농협", 16),
    ("88", "신한", 15),
    ("20", "우리", 12),
    ("81", "하나", 10),
    ("90", "카카오뱅크", 12),
    ("3", "기업", 6),
    ("71", "우체국", 4),
    ("32", "부산", 2),
    ("34", "광주", 1),
    ("89", "케이뱅크", 2),
]

# relative traffic per hour of the day (KST): quiet at night, lunch and evening peaks
HOURLY = [30, 18, 10, 6, 5, 6, 10, 20, 35, 50, 60, 70,
          80, 75, 65, 60, 60, 62, 65, 75, 90, 100, 95, 60]

SURNAMES = ["kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim",
            "han", "oh", "seo", "shin", "kwon", "hwang", "ahn", "song", "yoo", "hong",
            "jeon", "ko", "moon", "yang", "son", "bae", "baek", "heo", "nam", "sim"]
GIVEN = ["minsu", "jiho", "seoyeon", "jimin", "hyun", "sky", "happy", "love", "star",
         "zzang", "hong", "sun", "moon", "blue", "angel", "dream", "judy", "kwj", "yepp",
         "uytr", "sbchun", "kihote", "mint", "cool", "sweet", "jjang", "nabi", "haru"]


def buyer_pool(rng: random.Random, size: int) -> list[str]:
    """Plausible buyer ids (<= 15 chars, lowercase letters and digits)."""
    pool = []
    for _ in range(size):
        style = rng.random()
        if style < 0.45:
            base = rng.choice(GIVEN) + rng.choice(SURNAMES)
        elif style < 0.8:
            base = rng.choice(SURNAMES) + rng.choice(GIVEN)
        else:
            base = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                           for _ in range(rng.randint(4, 8)))
        r = rng.random()
        if r < 0.7:
            base += str(rng.randint(0, 9999))
        elif r < 0.85:
            base += str(rng.randint(60, 99))  # birth year
        pool.append(base[:15])
    return pool


def amount_table(rng: random.Random, size: int = 1 << 16) -> list[str]:
    """Amounts in won, as text: log-normal, 1,000 .. 2,000,000."""
    out = []
    for _ in range(size):
        v = math.exp(rng.gauss(math.log(30000), 1.1))
        v = min(max(v, 1000), 2_000_000)
        step = 1000 if v >= 100_000 else 100
        v = int(round(v / step) * step)
        out.append(str(min(max(v, 1000), 2_000_000)))
    return out


def file_name(mid: str, kind: str, date: str) -> str:
    return f"{mid}_{kind}_{date}.dat"


# ---- generation ---------------------------------------------------------------------

CHUNK = 100_000


class Clock:
    """Seconds relative to the file's day 00:00:00 -> 'yyyyMMddHHmmss'."""

    def __init__(self, day: dt.date):
        self.day = day
        self.hms = [f"{h:02d}{m:02d}{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self.dates: dict[int, str] = {}

    def date(self, d: int) -> str:
        s = self.dates.get(d)
        if s is None:
            s = (self.day + dt.timedelta(days=d)).strftime("%Y%m%d")
            self.dates[d] = s
        return s

    def fmt(self, t: int) -> str:
        d, s = divmod(t, 86400)
        return self.date(d) + self.hms[s]


def generate(rows: int, kind: str, date: str, mid: str, seed: int, encoding: str, out: str) -> str:
    day = dt.datetime.strptime(date, "%Y%m%d").date()
    if rows > 86400 * 100_000:
        raise SystemExit("too many rows for unique transaction numbers in one day")
    rng = random.Random(f"toss:{seed}:{kind}:{date}:{mid}")
    clock = Clock(day)
    eol = "\r\n" if encoding == "euc-kr" else "\n"
    status = "10" if kind == "AUTH" else "20"
    is_rev = kind == "REV"

    buyers = buyer_pool(rng, min(max(1000, rows // 5), 200_000))
    amounts = amount_table(rng)

    # payment time of every row within the day, newest first
    sec_w = []
    for h in HOURLY:
        sec_w.extend([h] * 3600)
    cum = []
    acc = 0
    for w in sec_w:
        acc += w
        cum.append(acc)
    secs = rng.choices(range(86400), cum_weights=cum, k=rows)
    secs.sort(reverse=True)

    pt_codes = [p[0] for p in PAYTYPES]
    pt_cum = list(_cumsum(p[1] for p in PAYTYPES))
    pt_src = {p[0]: p[2] for p in PAYTYPES}
    card_pairs = [(c, n) for c, n, _ in CARDS]
    card_cum = list(_cumsum(w for _, _, w in CARDS))
    bank_pairs = [(c, n) for c, n, _ in BANKS]
    bank_cum = list(_cumsum(w for _, _, w in BANKS))
    escrow_cum = [97, 100]
    # order placed 10 s .. 10 min before the approval
    order_lags = list(range(10, 600))
    # REV: original approval 0..30 days before the refund (most within a few days)
    rev_lags = [int(rng.expovariate(1 / (2.5 * 86400))) % (30 * 86400) + 60 for _ in range(1 << 14)]

    used: dict[int, int] = {}   # approval second -> how many transaction numbers used
    prefix = mid
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, file_name(mid, kind, date))
    tmp = path + ".tmp"
    getbits = rng.getrandbits
    with open(tmp, "wb") as f:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            chunk_secs = secs[start:start + n]
            pts = rng.choices(pt_codes, cum_weights=pt_cum, k=n)
            cards = rng.choices(card_pairs, cum_weights=card_cum, k=n)
            banks = rng.choices(bank_pairs, cum_weights=bank_cum, k=n)
            bys = rng.choices(buyers, k=n)
            ams = rng.choices(amounts, k=n)
            esc = rng.choices("NY", cum_weights=escrow_cum, k=n)
            olags = rng.choices(order_lags, k=n)
            rlags = rng.choices(rev_lags, k=n) if is_rev else None
            lines = []
            append = lines.append
            fmt = clock.fmt
            for i in range(n):
                t = chunk_secs[i]
                paydate = fmt(t)
                if is_rev:
                    t_auth = t - rlags[i]
                    auth_ts = fmt(t_auth)
                else:
                    t_auth = t
                    auth_ts = paydate
                k = used.get(t_auth, 0)
                used[t_auth] = k + 1
                suffix = (k * 7919 + t_auth * 2654435761) % 100_000
                pt = pts[i]
                src = pt_src[pt]
                if src == "card":
                    fcode, fname = cards[i]
                    authno = f"{getbits(27) % 100_000_000:08d}"
                elif src == "bank":
                    fcode, fname = banks[i]
                    authno = "0"
                else:
                    fcode = fname = ""
                    authno = "0"
                buyer = bys[i]
                append(f"{mid};{pt};{prefix}{auth_ts}{suffix:05d};Toss_{fmt(t_auth - olags[i])}_{buyer};"
                       f"{fcode};{fname};{buyer};{ams[i]};{esc[i]};{paydate};{authno};{status}{eol}")
            f.write("".join(lines).encode(encoding))
    os.replace(tmp, path)
    return path


def _cumsum(it):
    acc = 0
    for x in it:
        acc += x
        yield acc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True, help="number of records")
    ap.add_argument("--kind", choices=["AUTH", "REV"], default="AUTH")
    ap.add_argument("--date", default="20070706", help="business date, YYYYMMDD")
    ap.add_argument("--mid", default="toss", help="merchant id")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--encoding", choices=["utf-8", "euc-kr"], default="utf-8")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.rows < 0:
        ap.error("--rows must be >= 0")
    try:
        dt.datetime.strptime(a.date, "%Y%m%d")
    except ValueError:
        ap.error(f"--date {a.date!r} is not YYYYMMDD")
    if not a.mid or any(c in a.mid for c in ";,\r\n_"):
        ap.error("--mid must be non-empty and contain no ';', ',', '_' or line breaks")
    t0 = time.perf_counter()
    path = generate(a.rows, a.kind, a.date, a.mid, a.seed, a.encoding, a.out)
    if not a.quiet:
        size = os.path.getsize(path)
        print(f"wrote {path}: {a.rows} rows, {size / 1e6:.1f} MB, {a.encoding}, "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
