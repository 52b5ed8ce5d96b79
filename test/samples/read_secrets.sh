#!/bin/sh
# read_secrets: reads /etc/passwd and the decoy SSH private key /home/user/.ssh/id_rsa (plus the
# decoy AWS credentials). The report must show openat/read of /etc/passwd, /home/user/.ssh/id_rsa
# and /home/user/.aws/credentials, flagged as credential access.
cat /etc/passwd > /dev/null
head -1 /home/user/.ssh/id_rsa
grep -c aws_access_key_id /home/user/.aws/credentials
