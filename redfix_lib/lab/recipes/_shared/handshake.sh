#!/bin/sh
# TLS + ServerSync: the server's side of the handshake is a fixed amount of single-threaded CPU
# work (key exchange, initial state sync) and nothing else: no sleep, no disk. Alone it takes
# work / (one core's speed); beside N busy tasks at equal CPU shares on C cores it takes about
# (N + 1) / C times as long. HANDSHAKE_WORK is the node's calibrated cost (`redfix lab up`
# measures the machine and writes it to <lab home>/node.env, which every deploy reads).
n=${HANDSHAKE_WORK:-350000}
i=0
while [ $i -lt $n ]; do i=$((i+1)); done
printf 'Content-Type: text/plain\r\n\r\nServerSync session=%s work=%s\n' "$$" "$n"
