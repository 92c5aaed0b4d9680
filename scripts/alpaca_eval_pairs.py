#!/usr/bin/env python3
"""AlpacaEval GPT-4 annotations -> preference pairs in TRL's JSONL convention, for brm train / eval-prefs.

usage: scripts/alpaca_eval_pairs.py ANNOTATIONS.json [ANNOTATIONS.json ...] > pairs.jsonl

Each annotation {instruction, output_1, output_2, preference} with preference "1" or "2" becomes
{"prompt": instruction, "chosen": the preferred output, "rejected": the other, "source": file:index};
draws and invalid judgements (preference 0 or missing) and pairs with identical outputs are skipped
(counted on stderr). Standard library only; the input files are read, never written.
"""
import json
import sys
from pathlib import Path


def main(paths):
    kept = skipped = 0
    for path in paths:
        for i, a in enumerate(json.loads(Path(path).read_text(encoding="utf-8"))):
            pref = str(a.get("preference", "0")).split(".")[0]
            out1, out2 = a.get("output_1") or "", a.get("output_2") or ""
            if pref not in ("1", "2") or not out1.strip() or not out2.strip() or out1 == out2:
                skipped += 1
                continue
            chosen, rejected = (out1, out2) if pref == "1" else (out2, out1)
            print(json.dumps({"prompt": a["instruction"], "chosen": chosen, "rejected": rejected,
                              "source": f"{Path(path).name}:{i}"}, ensure_ascii=False))
            kept += 1
    print(f"alpaca_eval_pairs: {kept} pairs, {skipped} skipped (draws, empty or identical outputs)", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
