"""The pool in a few lines: check out, query, give back, look at the statistics.

python examples/basic.py [URL]      (default: the local MariaDB test database)
"""

from __future__ import annotations

import sys

import poolwarden

url = sys.argv[1] if len(sys.argv) > 1 else "mysql+pymysql://root@127.0.0.1:3306/test"

with poolwarden.Pool(url, pool_size=2, max_overflow=2, leak_threshold=30) as pool:
    with pool.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT 1 + 1")
        print("1 + 1 =", cur.fetchone()[0])
        conn.commit()
    print(pool)
    print(pool.stats())
