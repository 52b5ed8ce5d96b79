#!/usr/bin/env python3
# Benign: write a CSV file, read it back and summarise it.
import csv
import os
import statistics

path = '/tmp/sales.csv'
with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['region', 'month', 'amount'])
    for i in range(300):
        w.writerow([['north', 'south', 'east', 'west'][i % 4], 1 + i % 12, (i * 37) % 1000])

totals = {}
with open(path, newline='') as f:
    for row in csv.DictReader(f):
        totals.setdefault(row['region'], []).append(int(row['amount']))

with open('/tmp/summary.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['region', 'count', 'mean'])
    for region, amounts in sorted(totals.items()):
        w.writerow([region, len(amounts), round(statistics.mean(amounts), 1)])
print(open('/tmp/summary.csv').read())
os.remove(path)
