#!/bin/sh
# Benign: fetching files the way admin scripts do (wget reads ~/.netrc for logins on every run).
wget -q -O /tmp/Release https://deb.example.test/debian/dists/bookworm/Release
wget -q -O /tmp/index.html http://mirror.example.test/
curl -s -o /tmp/status.json https://status.example.test/api/v1/status
ls -l /tmp/Release /tmp/index.html /tmp/status.json
