#!/usr/bin/env python3
"""A tiny MLLP receiver for the tool tests: loopback, ephemeral port.

Prints "listening on 127.0.0.1:PORT" first, then answers every frame with an
ACK whose MSA-1 is --ack (default AA) and MSA-2 the message's MSH-10, after
--delay MS. --wrong-id answers with a wrong control id. --no-read accepts
connections and never reads from them (with a small receive buffer), so a
large message cannot be written. Runs until killed."""
import argparse
import socket
import sys
import threading
import time

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def ack_for(msg, code, wrong_id):
    cid = b""
    if msg.startswith(b"MSH") and len(msg) > 3:
        sep = msg[3:4]
        seg = msg.split(b"\r", 1)[0]
        fields = seg.split(sep)
        if len(fields) > 9:
            cid = fields[9]
    if wrong_id:
        cid = cid + b"X"
    return (b"MSH|^~\\&|RECV|RECV|SEND|SEND|20240101000000||ACK|A" + cid +
            b"|P|2.5\rMSA|" + code.encode() + b"|" + cid + b"|mini\r")


def serve(conn, args):
    if args.no_read:
        threading.Event().wait()  # hold the connection, read nothing
    buf = b""
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while True:
                s = buf.find(SB)
                if s < 0:
                    buf = b""
                    break
                e = buf.find(EB + CR, s)
                if e < 0:
                    buf = buf[s:]
                    break
                msg = buf[s + 1:e]
                buf = buf[e + 2:]
                if args.delay:
                    time.sleep(args.delay / 1000.0)
                try:
                    conn.sendall(SB + ack_for(msg, args.ack, args.wrong_id) + EB + CR)
                except OSError:
                    return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ack", default="AA")
    ap.add_argument("--delay", type=int, default=0)
    ap.add_argument("--wrong-id", action="store_true")
    ap.add_argument("--no-read", action="store_true")
    args = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.no_read:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    print("listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
