"""Answer audit precision and latency: the sample corpus given version histories, and claims quoting them.

Builds, in a temporary folder, 40 documents from the bodies of ``policies/`` and the development corpus
(bench/quality/dev/docs), each with 3-6 versions whose figures (days, amounts, percentages) change from one
version to the next, two in three with an EU variant of their own figures; the last global version is in force
on the audit day. Then audits, as a global agent, claims of six kinds:

- ``superseded``: a sentence of an earlier version that a later one changed (expected ``outdated``);
- ``in_force``: a sentence of the version in force (expected ``current``);
- ``other_region``: a sentence of the EU variant that differs from every global version (``other_region``);
- ``*_paraphrase``: the same, reworded by templates (a prefix, synonyms, contractions), figures kept;
- ``unsupported``: off-topic statements, and sentences in force with a figure no version ever had.

Reports, per kind, the share with the right status, the share with the right status *and* document, and the
false-flag rate on in-force claims (anything but ``current``); then p50/p99 of auditing a 5-claim draft.

    python bench/audit.py            # >=200 claims of each quoted kind, 100 of the others
    python bench/audit.py --smoke    # a few documents and claims, for CI
    python bench/audit.py --scale 100000   # latency only, over a synthetic store (bench/synthetic.py)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from kb import claims  # noqa: E402
from kb.audit import AuditRequest, audit  # noqa: E402
from kb.ingest.pipeline import sync  # noqa: E402
from kb.knowledge import KnowledgeBase  # noqa: E402
from kb.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "policies", ROOT / "bench" / "quality" / "dev" / "docs"]
TODAY = datetime(2026, 11, 24, 12, tzinfo=UTC)
FIRST = date(2024, 1, 1)
STEP = timedelta(days=120)
_NUM = re.compile(r"(?<![\w.])\d{1,4}(?![\w.,]\d)")
SYNONYMS = [("customers", "shoppers"), ("customer", "shopper"), ("within", "inside"), ("must", "need to"),
            ("receive", "get"), ("cannot", "can't"), ("items", "products"), ("Agents", "Staff"),
            ("purchase", "order"), ("free of charge", "at no cost"), ("approximately", "about")]  # fmt: skip
PREFIXES = ["Per our policy, ", "Just so you know, ", "Please note that ", "To confirm, ", "Good news: "]
OFF_TOPIC = ["Our cafeteria serves {n} flavours of ice cream on Fridays.", "The parking garage has {n} spaces "
             "reserved for electric scooters.", "Employees may bring up to {n} pets to the office party.",
             "The company choir rehearses {n} times a month in the lobby.", "Astronauts receive a {n} percent "
             "discount on moon rocks.", "Our headquarters has {n} meeting rooms named after rivers."]  # fmt: skip


@dataclass(frozen=True)
class Claim:
    kind: str
    text: str
    doc_id: str | None
    expected: str


def _sentences(body: str) -> list[str]:
    out = []
    for line in body.splitlines():
        if line.lstrip().startswith(("#", "|")) or not line.strip():
            continue
        out += [s for s in claims.sentences(line) if len(claims.words(s)) >= 7]
    return out


def _sources(limit: int) -> list[tuple[str, str]]:
    """(doc_id, body) of global documents with sentences carrying figures."""
    seen, out = set(), []
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.md")):
            head, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
            front = yaml.safe_load(head.removeprefix("---\n"))
            if front.get("region", "global") != "global" or front["doc_id"] in seen:
                continue
            if sum(1 for s in _sentences(body) if _NUM.search(s)) >= 4:
                seen.add(front["doc_id"])
                out.append((front["doc_id"], body))
    return out[:limit]


def _mutate(sentence: str, rng: random.Random, used: set[str]) -> str:
    def new(match: re.Match[str]) -> str:
        value = int(match.group(0))
        for _ in range(50):
            candidate = str(max(1, value + rng.choice([-1, 1]) * rng.randint(1, max(3, value // 2))))
            if candidate not in used and candidate != match.group(0):
                used.add(candidate)
                return candidate
        return str(value + 1000)

    return _NUM.sub(new, sentence, count=1)


def build(folder: Path, documents: int, rng: random.Random) -> list[Claim]:
    """Write the versioned corpus into ``folder``; the claims that quote it (quoted kinds only)."""
    out: list[Claim] = []
    for n, (source_id, body) in enumerate(_sources(documents)):
        doc_id = f"{source_id}-h{n}"
        used = {m.group(0) for m in _NUM.finditer(body)}
        versions, live = _versions(body, used, rng)
        for v, text in enumerate(versions, 1):
            front = {"doc_id": doc_id, "title": doc_id.replace("-", " ").title(), "region": "global", "version": v,
                     "effective_from": (FIRST + STEP * (v - 1)).isoformat(), "doc_type": "policy"}  # fmt: skip
            _write(folder / f"{doc_id}-v{v}.md", front, text)
        current = set(_sentences(versions[-1]))
        for text in versions[:-1]:
            out += [Claim("superseded", s, doc_id, "outdated") for s in _sentences(text) if s not in current]
        out += [Claim("in_force", s, doc_id, "current") for s in current]
        if n % 3:
            out += _eu_variant(folder, doc_id, versions, live, used, rng)
    return out


def _versions(body: str, used: set[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """2 to 5 later versions of ``body``, each with up to 3 of its figures changed; the sentences as last changed."""
    numbered = [s for s in _sentences(body) if _NUM.search(s)]
    versions, live = [body], list(numbered)
    for _ in range(rng.randint(2, 5)):
        text = versions[-1]
        for i in rng.sample(range(len(live)), k=min(3, len(live))):
            changed = _mutate(live[i], rng, used)
            text, live[i] = text.replace(live[i], changed, 1), changed
        versions.append(text)
    return versions, live


def _eu_variant(
    folder: Path, doc_id: str, versions: list[str], live: list[str], used: set[str], rng: random.Random
) -> list[Claim]:
    """An EU variant of the last version with up to 5 figures changed; its sentences no global version says."""
    variant = versions[-1]
    for sentence in rng.sample(live, k=min(5, len(live))):
        variant = variant.replace(sentence, _mutate(sentence, rng, used), 1)
    front = {"doc_id": doc_id, "title": doc_id.title() + " (EU)", "region": "EU", "version": 1,
             "effective_from": "2025-01-01", "doc_type": "policy"}  # fmt: skip
    _write(folder / f"{doc_id}-eu.md", front, variant)
    every_global = {s for text in versions for s in _sentences(text)}
    return [Claim("other_region", s, doc_id, "other_region") for s in _sentences(variant) if s not in every_global]


def _write(path: Path, front: dict[str, object], body: str) -> None:
    path.write_text(f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{body}", encoding="utf-8")


def paraphrase(sentence: str, rng: random.Random) -> str:
    text = claims._MARKUP.sub("", sentence)
    for old, new in rng.sample(SYNONYMS, k=len(SYNONYMS)):
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    text = re.sub(r"\s*\([^)]*\)", "", text)
    return rng.choice(PREFIXES) + text[0].lower() + text[1:]


def unsupported(quoted: list[Claim], count: int, rng: random.Random) -> list[Claim]:
    out = [Claim("unsupported", rng.choice(OFF_TOPIC).format(n=rng.randint(3, 40)), None, "unsupported")
           for _ in range(count // 2)]  # fmt: skip
    figured = [c for c in quoted if c.kind == "in_force" and _NUM.search(c.text)]
    for claim in rng.sample(figured, k=min(count - len(out), len(figured))):
        made_up = _NUM.sub(lambda m: str(7000 + rng.randint(0, 999)), claim.text, count=1)
        out.append(Claim("unsupported", made_up, None, "unsupported"))
    return out


def claim_set(quoted: list[Claim], quoted_n: int, other_n: int, rng: random.Random) -> list[Claim]:
    by_kind: dict[str, list[Claim]] = defaultdict(list)
    for claim in quoted:
        by_kind[claim.kind].append(claim)
    picked: list[Claim] = []
    for kind, n in (("superseded", quoted_n), ("in_force", quoted_n), ("other_region", other_n)):
        chosen = rng.sample(by_kind[kind], k=min(n, len(by_kind[kind])))
        picked += chosen
        picked += [Claim(f"{kind}_paraphrase", paraphrase(c.text, rng), c.doc_id, c.expected)
                   for c in rng.sample(chosen, k=min(other_n, len(chosen)))]  # fmt: skip
    return picked + unsupported(quoted, other_n, rng)


def evaluate(kb: KnowledgeBase, claim_list: list[Claim]) -> dict[str, Counter[str]]:
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for claim in claim_list:
        got = audit(kb, AuditRequest(claim.text, "global")).claims[0]
        doc = got.support.validity.record.doc_id if got.support else None
        t = tally[claim.kind]
        t["n"] += 1
        t["status"] += got.status == claim.expected
        t["status_doc"] += got.status == claim.expected and (claim.doc_id is None or doc == claim.doc_id)
        t[f"got_{got.status.value}"] += 1
    return tally


def latency(kb: KnowledgeBase, claim_list: list[Claim], drafts: int, rng: random.Random) -> list[float]:
    times = []
    for _ in range(drafts):
        draft = " ".join(c.text.strip() for c in rng.sample(claim_list, k=5))
        started = time.perf_counter()
        audit(kb, AuditRequest(draft, "global"))
        times.append((time.perf_counter() - started) * 1000)
    return times


def scale_latency(chunks_in_force: int, drafts: int, rng: random.Random) -> None:
    """p50 of a 5-claim draft over a store filled by bench/synthetic.py (random vectors: the statuses mean
    nothing, the cost is real), ``chunks_in_force`` over 10 regions as in bench/query_latency.py, 10 superseded
    versions per series; claims quote chunks in force and superseded ones, audited as DE (DE -> EU -> global)."""
    from bench.synthetic import REGIONS, fill, report_progress, series_count

    per_doc = 10 * series_count(1000, 0.1111) / 1000
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(docs=Path(tmp) / "policies", data=Path(tmp) / "data", watch=False)
        settings.docs.mkdir()
        kb = KnowledgeBase.open(settings)
        try:
            started = time.monotonic()
            fill(kb, max(1, round(chunks_in_force / per_doc)), 10, 10, 0.1111, progress=report_progress(started))
            stats = kb.stats()
            texts = list(kb.ledger.embed_texts().values())
            claim_list = [Claim("synthetic", t.split(": ", 1)[-1] + ".", None, "") for t in rng.sample(texts, 500)]
            audit(kb, AuditRequest(claim_list[0].text, "DE"))  # builds the chain's views, as a first query does
            times = []
            for _ in range(drafts):
                draft = " ".join(c.text for c in rng.sample(claim_list, k=5))
                began = time.perf_counter()
                audit(kb, AuditRequest(draft, rng.choice(["global", *REGIONS])))
                times.append((time.perf_counter() - began) * 1000)
        finally:
            kb.close()
    print(
        f"\n{stats['chunks_resident']} chunks resident, {stats['chunks_stored']} stored (fill "
        f"{time.monotonic() - started:.0f}s): audit of a 5-claim draft p50 {statistics.median(times):.1f} ms, "
        f"p99 {sorted(times)[int(0.99 * (len(times) - 1))]:.1f} ms over {len(times)} drafts (goal p50 < 150 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="6 documents, a few claims of each kind, for CI")
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--scale", type=int, metavar="CHUNKS", help="only the latency over a synthetic store of "
                        "CHUNKS in force (10 regions, 10 superseded versions a series), e.g. 100000")  # fmt: skip
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if args.scale:
        scale_latency(args.scale, 20 if args.smoke else 200, rng)
        return
    documents, quoted_n, other_n, drafts = (6, 10, 5, 10) if args.smoke else (args.documents, 200, 100, 100)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "policies"
        folder.mkdir()
        quoted = build(folder, documents, rng)
        settings = Settings(docs=folder, data=Path(tmp) / "data", watch=False)
        kb = KnowledgeBase.open(settings, clock=lambda: TODAY)
        try:
            started = time.perf_counter()
            report = sync(kb)
            print(f"{documents} documents, {len(report.changes)} versions ingested in "
                  f"{time.perf_counter() - started:.0f}s; {kb.stats()['chunks_stored']} chunks stored")  # fmt: skip
            picked = claim_set(quoted, quoted_n, other_n, rng)
            tally = evaluate(kb, picked)
            times = latency(kb, picked, drafts, rng)
        finally:
            kb.close()
    print(f"\n{'kind':<24}{'claims':>7}{'status':>9}{'+doc':>9}  statuses given")
    for kind, t in tally.items():
        given = ", ".join(f"{k[4:]} {v}" for k, v in sorted(t.items()) if k.startswith("got_"))
        print(f"{kind:<24}{t['n']:>7}{t['status'] / t['n']:>9.1%}{t['status_doc'] / t['n']:>9.1%}  {given}")
    flagged = sum(tally[k]["n"] - tally[k]["got_current"] for k in ("in_force", "in_force_paraphrase"))
    total = sum(tally[k]["n"] for k in ("in_force", "in_force_paraphrase"))
    outdated = sum(tally[k]["status_doc"] for k in ("superseded", "superseded_paraphrase"))
    outdated_n = sum(tally[k]["n"] for k in ("superseded", "superseded_paraphrase"))
    region = sum(tally[k]["status_doc"] for k in ("other_region", "other_region_paraphrase"))
    region_n = sum(tally[k]["n"] for k in ("other_region", "other_region_paraphrase"))
    print(f"\noutdated recognised with the right document: {outdated / outdated_n:.1%} (goal >= 90%)")
    print(f"in-force claims wrongly flagged: {flagged / total:.1%} (goal <= 3%)")
    print(f"other-region recognised with the right document: {region / region_n:.1%} (goal >= 90%)")
    print(f"audit of a 5-claim draft: p50 {statistics.median(times):.1f} ms, "
          f"p99 {sorted(times)[int(0.99 * (len(times) - 1))]:.1f} ms over {len(times)} drafts")  # fmt: skip


if __name__ == "__main__":
    main()
