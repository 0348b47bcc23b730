# Repeats the Exchange recording COPIES times, each copy shifted by 3 days in exchange time and
# receive time, with trade ids and sequence numbers shifted too, so every tick stays valid and new.
import json, sys
from datetime import datetime, timedelta
src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().splitlines()
shift = timedelta(days=3)
with open(dst, "w") as out:
    for k in range(copies):
        for line in lines:
            wrapper = json.loads(line)
            raw = json.loads(wrapper["raw"])
            if raw.get("type") == "ticker":
                t = datetime.fromisoformat(raw["time"].replace("Z", "+00:00")) + k * shift
                raw["time"] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                raw["trade_id"] += k * 10_000_000
                raw["sequence"] += k * 10_000_000_000
            elif k > 0:
                continue
            wrapper["ts"] += k * shift.total_seconds()
            wrapper["raw"] = json.dumps(raw, separators=(",", ":"))
            out.write(json.dumps(wrapper, separators=(",", ":")) + "\n")
