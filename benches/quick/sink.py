"""A minimal HTTP/1.1 webhook receiver for quick delivery runs: answers 200 with keep-alive and
prints, each second, the time, the total received and the number received in that second.

Usage: python3 benches/quick/sink.py PORT
"""
import asyncio, sys, time
count = 0
first = None
async def handle(reader, writer):
    global count, first
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            count += 1
            if first is None: first = time.time()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    except Exception:
        writer.close()
async def report():
    last = 0
    while True:
        await asyncio.sleep(1)
        print(time.time(), count, count - last, flush=True)
        last = count
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    asyncio.create_task(report())
    async with server:
        await server.serve_forever()
asyncio.run(main())
