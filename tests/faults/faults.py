#!/usr/bin/env python3
"""Fault injection for the outbox path, end to end, one dispatcher process.

    python3 tests/faults/faults.py --hookseal target/debug/hookseal \
        --pgport PORT --pgdata DIR --events N [--out faults.md]

Needs a PostgreSQL cluster with the extension available (tests/faults/run.sh
starts one). Everything runs on 127.0.0.1. One `hookseal dispatch` process,
connected through a TCP proxy this script controls, lives through every
fault in turn:

Receivers (each its own endpoint, beside a healthy one): every event's first
two attempts meet the fault, the third a plain 200. Faults: hang (never
answers), reset mid-body (RST while the request body arrives), slowloris
(answer trickled a byte per 0.3 s), 10 MB answers (every answer, 503 then
200), garbage HTTP, close after headers (503 headers promising a body, then
FIN), status 999.

Database: PostgreSQL killed with SIGKILL mid-flow and restarted; the network
between worker and database stalled (proxy holds its connections and stops
forwarding for 8 s, then drops them all); statement timeouts (the
dispatcher's role at 300 ms while another session holds the outbox locked
for 4 s); an outbox insert that fails inside webhook_send's transaction
(a trigger refusing every other event).

For each: events sent, delivered (distinct ids the receiver took), duplicates,
dead-lettered, lost (sent and committed but never delivered), and the time
to drain. After all of them the same worker must still deliver new events
within 5 s, and its peak memory (VmHWM) is reported. Exits non-zero when an
event is lost or wrongly dead-lettered, or the worker stopped.
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

BAD_ATTEMPTS = 2


def psql(db, sql, port, check=True):
    r = subprocess.run(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                        "-U", "postgres", "-d", db, "-c", sql],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}\n{sql}")
    return r.stdout.strip()


def psql_retry(db, sql, port, seconds=30):
    deadline = time.time() + seconds
    while True:
        try:
            return psql(db, sql, port)
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


# ------------------------------------------------------------------ receivers

class Tally:
    def __init__(self):
        self.attempts = {}      # event id -> attempts seen
        self.ok = []            # event ids answered 200, in order
        self.requests = 0


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def event_id(body):
    try:
        return json.loads(body)["id"]
    except Exception:
        return None


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def serve_fault(kind, tally, reader, writer):
    try:
        if kind == "reset":
            # The id from the header (the body is not read whole on a bad
            # attempt): half the body, then a reset.
            head = await reader.readuntil(b"\r\n\r\n")
            tally.requests += 1
            length, eid = 0, None
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"x-webhook-id":
                    eid = value.strip().decode()
            n = tally.attempts.get(eid, 0)
            tally.attempts[eid] = n + 1
            if n < BAD_ATTEMPTS:
                await reader.readexactly(length // 2)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            await reader.readexactly(length)
            if eid is not None:
                tally.ok.append(eid)
            writer.write(OK)
            await writer.drain()
            return
        head, body = await read_request(reader)
        tally.requests += 1
        eid = event_id(body)
        n = tally.attempts.get(eid, 0)
        tally.attempts[eid] = n + 1
        bad = n < BAD_ATTEMPTS and kind != "healthy"
        if kind == "big":
            status = b"503 Service Unavailable" if bad else b"200 OK"
            size = 10 * 1024 * 1024
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(size).encode() +
                         b"\r\nConnection: close\r\n\r\n")
            chunk = b"x" * 65536
            try:
                for _ in range(size // len(chunk)):
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            if not bad and eid is not None:
                tally.ok.append(eid)
            return
        if not bad:
            if eid is not None:
                tally.ok.append(eid)
            writer.write(OK)
            await writer.drain()
            return
        if kind == "hang":
            await asyncio.sleep(3600)
        elif kind == "slowloris":
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(0.3)
        elif kind == "garbage":
            writer.write(b"\x00\xffTHIS IS NOT HTTP\r\n\x1b[31m" + os.urandom(256) + b"\r\n\r\n")
            await writer.drain()
        elif kind == "close_after_headers":
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\npartial")
            await writer.drain()
        elif kind == "status999":
            writer.write(b"HTTP/1.1 999 Nonsense\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


# ---------------------------------------------------------------------- proxy

class Proxy:
    """Forwards 127.0.0.1:port to the database; can stall and drop."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.conns = set()

    async def handle(self, cr, cw):
        try:
            await self.flowing.wait()
            sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            cw.close()
            return
        pair = (cw, sw)
        self.conns.add(pair)

        async def pump(r, w):
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    await self.flowing.wait()
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass
        await asyncio.gather(pump(cr, sw), pump(sr, cw))
        self.conns.discard(pair)

    def drop_all(self):
        for cw, sw in list(self.conns):
            for w in (cw, sw):
                try:
                    w.transport.abort()
                except Exception:
                    pass
        self.conns.clear()


# ----------------------------------------------------------------- the run

class Loop:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def soon(self, fn):
        self.loop.call_soon_threadsafe(fn)


async def start_server(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0, limit=1 << 20)
    return server, server.sockets[0].getsockname()[1]


def rss_peak(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hookseal", required=True)
    ap.add_argument("--pgport", type=int, required=True)
    ap.add_argument("--pgdata", required=True, help="the cluster directory (data/ inside)")
    ap.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--out")
    ap.add_argument("--installed", action="store_true",
                    help="database `faults` has hookseal already (either flavour: run.sh installs it)")
    args = ap.parse_args()
    port, n = args.pgport, args.events
    db = "faults"
    if not args.installed:
        psql("postgres", f"DROP DATABASE IF EXISTS {db}", port)
        psql("postgres", f"CREATE DATABASE {db}", port)
        psql(db, "CREATE EXTENSION hookseal", port)
    psql(db, "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fault_dispatcher') "
             "THEN CREATE ROLE fault_dispatcher LOGIN IN ROLE hookseal_dispatcher; END IF; END $$", port)

    L = Loop()
    kinds = ["hang", "reset", "slowloris", "big", "garbage", "close_after_headers", "status999"]
    tallies = {k: Tally() for k in kinds + ["healthy"]}
    ports = {}
    for k in kinds + ["healthy"]:
        _, ports[k] = L.call(start_server(
            lambda r, w, k=k: serve_fault("healthy" if k == "healthy" else k, tallies[k], r, w)))
    proxy = Proxy(port)
    _, proxy_port = L.call(start_server(proxy.handle))

    apps = {}

    def endpoint(name, kind):
        app = psql(db, f"SELECT hookseal.create_app('{name}')", port)
        psql(db, f"SELECT hookseal.create_endpoint('{app}', 'http://127.0.0.1:{ports[kind]}/{name}', "
                 f"'native', options => '{{\"failure_threshold\": 1000000}}')", port)
        apps[name] = app
        return app

    def schedule_all():
        psql(db, "UPDATE hookseal.endpoints SET retry_schedule = "
                 "array_fill('0.3 seconds'::interval, ARRAY[10]), retry_jitter = 0", port)

    def send(app, count, tag):
        psql(db, f"SELECT count(hookseal.webhook_send('{app}', 'fault.{tag}', jsonb_build_object('n', g))) "
                 f"FROM generate_series(1, {count}) g", port)

    def counts(app):
        rows = psql_retry(db, f"SELECT status, count(*) FROM hookseal.outbox o JOIN hookseal.endpoints e "
                              f"ON e.id = o.endpoint_id WHERE e.app_id = '{app}' GROUP BY status", port)
        out = {}
        for line in rows.splitlines():
            s, c = line.split("|")
            out[s] = int(c)
        return out

    def wait_settled(apps_, seconds):
        t0 = time.time()
        while time.time() - t0 < seconds:
            if all(set(counts(a)) <= {"delivered", "dead"} for a in apps_):
                return time.time() - t0
            time.sleep(0.25)
        return None

    for k in kinds:
        endpoint(k, k)
    for phase in ["pg_kill", "net_stall", "stmt_timeout", "insert_fail", "after"]:
        endpoint(phase, "healthy")
    schedule_all()

    disp = subprocess.Popen(
        [args.hookseal, "dispatch",
         "--database-url", f"postgres://fault_dispatcher@127.0.0.1:{proxy_port}/{db}",
         "--allow", "127.0.0.1/32", "--timeout", "2", "--connect-timeout", "1",
         "--lease", "10", "--db-timeout", "3", "--poll-ms", "200"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(args.pgdata, "dispatcher.log"), "w"))
    results = []

    def record(name, what, sent, tally, app, took):
        c = counts(app)
        unique = len(set(tally.ok))
        results.append({
            "fault": name, "tried": what, "sent": sent, "delivered": unique,
            "duplicates": len(tally.ok) - unique, "dead": c.get("dead", 0),
            "lost": sent - unique - c.get("dead", 0),
            "requests": tally.requests,
            "seconds": "%.1f" % took if took is not None else "not settled",
        })

    # -------- receivers that misbehave
    what = {
        "hang": "never answers (2 s timeout)",
        "reset": "RST while the body arrives",
        "slowloris": "answer trickled, 1 byte / 0.3 s",
        "big": "10 MB answers (503, then 200)",
        "garbage": "bytes that are not HTTP",
        "close_after_headers": "503 headers, then FIN mid-body",
        "status999": "status line `999`",
    }
    for k in kinds:
        send(apps[k], n, k)
    t0 = time.time()
    took = wait_settled([apps[k] for k in kinds], 60 + n * 0.2)
    for k in kinds:
        record(k, what[k], n, tallies[k], apps[k], took)

    healthy = tallies["healthy"]

    def phase(name, tried, action, seconds=120, before_send=None):
        """Sends n events to the phase's endpoint and runs `action` (the
        fault) while they are delivered; `before_send` runs first when the
        fault must be in place before the events exist."""
        print(f"phase {name} at {time.strftime('%H:%M:%S')}", file=sys.stderr)
        base = len(healthy.ok)
        if before_send:
            before_send()
        send(apps[name], n, name)
        t0 = time.time()
        at_fault = action(base)
        took = wait_settled([apps[name]], seconds)
        t = Tally()
        t.ok = list(healthy.ok[base:])
        t.requests = len(t.ok)
        if at_fault is not None:
            tried = f"{tried} (after {at_fault} of {n} delivered)"
        record(name, tried, n, t, apps[name], None if took is None else time.time() - t0)

    def wait_some(base, fraction=0.25, seconds=30):
        """Until `fraction` of the phase's events arrived; how many had."""
        t0 = time.time()
        while len(healthy.ok) - base < n * fraction and time.time() - t0 < seconds:
            time.sleep(0.005)
        return len(healthy.ok) - base

    # -------- PostgreSQL SIGKILL and restart
    def pg_kill(base):
        got = wait_some(base)
        with open(os.path.join(args.pgdata, "data", "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        # Its backends notice the postmaster's death and exit; until they
        # have, the shared memory is in use and a start is refused.
        for _ in range(60):
            r = subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(args.pgbin, "pg_ctl"),
                                "-D", os.path.join(args.pgdata, "data"), "-l",
                                os.path.join(args.pgdata, "server.log"), "-w", "start"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return got
            time.sleep(0.5)
        raise RuntimeError("PostgreSQL did not restart")
    phase("pg_kill", "PostgreSQL SIGKILLed mid-flow, restarted 1 s later", pg_kill)

    # -------- network stall, then every connection dropped
    def net_stall(base):
        got = wait_some(base)
        L.soon(proxy.flowing.clear)
        time.sleep(8)
        L.soon(proxy.drop_all)
        L.soon(proxy.flowing.set)
        return got
    phase("net_stall", "worker-database link stalled 8 s, then all connections dropped", net_stall)

    # -------- statement timeouts
    locker = []

    def lock_state():
        # The dispatcher's role gets a 300 ms statement timeout (new
        # sessions: its connections are ended), then another session holds
        # endpoint_state (which claim() reads and ack/fail update) for 4 s;
        # the events are sent meanwhile (webhook_send does not need it).
        psql(db, "ALTER ROLE fault_dispatcher SET statement_timeout = '300ms'", port)
        psql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'fault_dispatcher'",
             port)
        locker.append(subprocess.Popen(
            ["psql", "-qAtX", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-c",
             "BEGIN; LOCK TABLE hookseal.endpoint_state IN ACCESS EXCLUSIVE MODE; "
             "SELECT pg_sleep(4); COMMIT;"], stdout=subprocess.DEVNULL))
        time.sleep(0.3)

    def stmt_timeout(base):
        got = len(healthy.ok) - base
        locker[0].wait()
        psql(db, "ALTER ROLE fault_dispatcher RESET statement_timeout", port)
        return got
    phase("stmt_timeout", "statement_timeout 300 ms; endpoint_state locked 4 s by another session",
          stmt_timeout, before_send=lock_state)

    # -------- an outbox insert failing inside webhook_send's transaction
    psql(db, """
        CREATE FUNCTION public.refuse_odd() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (NEW.body::jsonb->'data'->>'n')::int % 2 = 1 THEN
                RAISE EXCEPTION 'injected outbox insert failure' USING ERRCODE = '53100';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_odd BEFORE INSERT ON hookseal.outbox
            FOR EACH ROW EXECUTE FUNCTION public.refuse_odd();""", port)
    before = len(healthy.ok)
    outcome = psql(db, f"""
        DO $$
        DECLARE ok int := 0; refused int := 0;
        BEGIN
            FOR g IN 1..{2 * n} LOOP
                BEGIN
                    PERFORM hookseal.webhook_send('{apps['insert_fail']}', 'fault.insert',
                                                  jsonb_build_object('n', g));
                    ok := ok + 1;
                EXCEPTION WHEN disk_full THEN
                    refused := refused + 1;
                END;
            END LOOP;
            RAISE NOTICE 'sent % refused %', ok, refused;
        END $$;
        SELECT count(*) FROM hookseal.events WHERE type = 'fault.insert';""", port)
    psql(db, "DROP TRIGGER refuse_odd ON hookseal.outbox", port)
    committed = int(outcome.splitlines()[-1])
    t0 = time.time()
    took = wait_settled([apps["insert_fail"]], 60)
    t = Tally()
    t.ok = healthy.ok[before:]
    t.requests = len(t.ok)
    half = int(psql(db, "SELECT count(*) FROM hookseal.events v WHERE v.type = 'fault.insert' AND "
                        "NOT EXISTS (SELECT 1 FROM hookseal.outbox o WHERE o.event_id = v.id)", port))
    record("insert_fail", f"outbox insert refused for every other event ({2 * n} sent, "
           f"{2 * n - committed} refused to the caller, {half} events without their row)",
           committed, t, apps["insert_fail"], None if took is None else time.time() - t0)
    if committed != n or half != 0:
        results[-1]["lost"] = f"{results[-1]['lost']} (committed {committed}, half-written {half})"

    # -------- the same worker still works
    before = len(healthy.ok)
    send(apps["after"], 10, "after")
    t0 = time.time()
    while len(healthy.ok) - before < 10 and time.time() - t0 < 5:
        time.sleep(0.05)
    alive = len(healthy.ok) - before >= 10 and disp.poll() is None
    alive_ms = int((time.time() - t0) * 1000)
    peak = rss_peak(disp.pid) if disp.poll() is None else 0
    disp.send_signal(signal.SIGTERM)
    try:
        disp.wait(30)
    except subprocess.TimeoutExpired:
        disp.kill()

    lines = ["| fault | what was done | sent | delivered | duplicates | dead-lettered | lost | requests | drained in (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append("| {fault} | {tried} | {sent} | {delivered} | {duplicates} | {dead} | {lost} | "
                     "{requests} | {seconds} |".format(**r))
    lines.append("")
    lines.append(f"The same dispatcher process went through every fault; afterwards it delivered 10 new "
                 f"events in {alive_ms} ms ({'alive' if alive else 'STOPPED'}); its peak RSS (VmHWM) "
                 f"was {peak} MiB.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    bad = [r for r in results if r["lost"] != 0 or r["dead"] != 0 or r["seconds"] == "not settled"]
    if bad or not alive:
        print(f"FAILED: {[r['fault'] for r in bad]} alive={alive}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
