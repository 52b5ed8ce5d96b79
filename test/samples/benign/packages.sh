#!/bin/sh
# Benign: package-manager queries, and an index update (answered by the sandbox's sinkhole).
dpkg -l | head -n 15
dpkg -s coreutils | head -n 5
apt-cache policy bash
apt-cache show gzip | head -n 10
apt-get update -qq 2>&1 | tail -n 2
