#!/bin/sh
# Benign: package-manager queries.
dpkg -l | head -n 15
dpkg -s coreutils | head -n 5
apt-cache policy bash
apt-cache show gzip | head -n 10
