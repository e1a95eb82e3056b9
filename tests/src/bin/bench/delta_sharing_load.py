"""B10's reader: one table loaded into pandas by the `delta-sharing` connector, and the same
Parquet files read from disk with pyarrow (the limit), runs interleaved in one interpreter.

    python delta_sharing_load.py PROFILE_FILE share.schema.table RUNS FILE...

Prints one line per run after a warm-up of each: `RUN <connector rows> <connector seconds>
<pyarrow rows> <pyarrow seconds>`.
"""

import gc
import sys
import time

import delta_sharing
import pyarrow.parquet as pq


def main():
    profile, table, runs, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]

    def connector():
        return len(delta_sharing.load_as_pandas(f"{profile}#{table}"))

    def from_disk():
        return len(pq.read_table(files).to_pandas())

    connector()
    from_disk()
    for _ in range(runs):
        started = time.perf_counter()
        shared = connector()
        shared_seconds = time.perf_counter() - started
        started = time.perf_counter()
        local = from_disk()
        local_seconds = time.perf_counter() - started
        print(f"RUN {shared} {shared_seconds} {local} {local_seconds}", flush=True)
        # Arrow's reader threads must not outlive the interpreter (apache/arrow#34314).
        gc.collect()


if __name__ == "__main__":
    main()
