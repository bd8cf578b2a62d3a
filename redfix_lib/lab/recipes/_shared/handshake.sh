#!/bin/sh
# TLS + ServerSync: the server's side of the handshake is CPU-bound (key exchange, initial
# state sync), so under CPU contention it takes proportionally longer.
i=0
while [ $i -lt 350000 ]; do i=$((i+1)); done
printf 'Content-Type: text/plain\r\n\r\nServerSync session=%s\n' "$$"
