"""Read every table of a Delta Sharing share with the `delta-sharing` connector into pandas.

Order a `file` channel (see bi-examples/api/order_channel.py) and save the `connection.profile`
of its `channel.ready` event as a profile file, then:

    python bi-examples/delta-sharing/load_tables.py PROFILE_FILE

with the Python of the Delta Sharing virtualenv that `scripts/python-env` makes. For each table
it prints `TABLE share.schema.table ROWS n`, and for its first integer column
`SUM share.schema.table column value`, figures a test compares with SQL.
"""

import gc
import sys

import delta_sharing
import pandas as pd


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python load_tables.py PROFILE_FILE")
    profile = sys.argv[1]
    client = delta_sharing.SharingClient(profile)
    for table in client.list_all_tables():
        name = f"{table.share}.{table.schema}.{table.name}"
        frame = delta_sharing.load_as_pandas(f"{profile}#{name}")
        print(f"TABLE {name} ROWS {len(frame)}")
        integers = [column for column in frame.columns
                    if pd.api.types.is_integer_dtype(frame[column])]
        if integers:
            column = integers[0]
            print(f"SUM {name} {column} {int(frame[column].sum())}")
        # Drop the frame and its Arrow scanner now: Arrow's reader threads that outlive the
        # interpreter's own teardown can abort it (apache/arrow#34314).
        del frame
        gc.collect()


if __name__ == "__main__":
    main()
