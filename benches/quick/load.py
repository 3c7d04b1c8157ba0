"""Posts EVENTS events to the default bus in batches of 100 from THREADS threads (urllib).

Usage: python3 benches/quick/load.py BASE_URL TOKEN EVENTS THREADS
A stopgap until the end-to-end harness (issue 6) exists.
"""
import json, sys, threading, time, urllib.request
base, token, total, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
per = total // threads
def work(t):
    for b in range(per // 100):
        body = json.dumps({"entries": [{"source": "shop", "detail-type": "t", "detail": {"i": i, "t": t}} for i in range(100)]}).encode()
        req = urllib.request.Request(base + "/v1/buses/default/events", data=body, headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
start = time.time()
ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
el = time.time() - start
print(f"posted {per//100*100*threads} events in {el:.2f}s = {per//100*100*threads/el:.0f} ev/s")
