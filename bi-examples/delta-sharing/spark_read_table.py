#!/usr/bin/env python3
"""A Spark job that reads one table of a Delta Sharing share from the file URLs it is given.

The driver asks the share's endpoint for the table's files (`POST …/query`, as the Delta
Sharing protocol has it) with the bearer token of the profile file. Each file URL (a
presigned S3 URL, or one the gateway signed) becomes one row and one partition of a
DataFrame, and `mapInArrow` has each Spark task download its file and pass its Parquet
record batches on to Spark: the files go from the store to the tasks, never through the
driver. The table's Delta `schemaString` is Spark's own schema JSON.

    python bi-examples/delta-sharing/spark_read_table.py PROFILE_FILE share.schema.table

with the Python of the tests' virtualenv (`scripts/python-env`: pyspark, pyarrow). Prints
`FILES n`, `ROWS n` and, for its first integer column, `SUM column value`.
"""

import io
import json
import os
import sys
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python spark_read_table.py PROFILE_FILE share.schema.table")
    with open(sys.argv[1], encoding="utf-8") as file:
        profile = json.load(file)
    share, schema, table = sys.argv[2].split(".", 2)
    schema_string, urls = table_files(profile, share, schema, table)

    # Spark's Python workers must run this interpreter (it has pyarrow), and Spark listens on
    # loopback only. Both must be set before the JVM starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import IntegralType, StructType

    spark_schema = StructType.fromJson(json.loads(schema_string))
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("tollgate-delta-sharing-files")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        files = spark.createDataFrame(
            spark.sparkContext.parallelize([(url,) for url in urls], max(1, len(urls))),
            "url string",
        )
        rows = files.mapInArrow(download(to_arrow_schema(spark_schema)), spark_schema).cache()
        print(f"FILES {len(urls)}")
        print(f"ROWS {rows.count()}")
        integers = [f.name for f in spark_schema.fields if isinstance(f.dataType, IntegralType)]
        if integers:
            total = rows.agg({integers[0]: "sum"}).collect()[0][0] or 0
            print(f"SUM {integers[0]} {int(total)}")
    finally:
        spark.stop()


def table_files(profile: dict, share: str, schema: str, table: str) -> tuple[str, list[str]]:
    """The table's Delta schema string and the URLs of its files, from a `query` request."""
    url = f"{profile['endpoint'].rstrip('/')}/shares/{share}/schemas/{schema}/tables/{table}/query"
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={
            "authorization": f"Bearer {profile['bearerToken']}",
            "content-type": "application/json",
        },
    )
    schema_string, urls = None, []
    with urllib.request.urlopen(request) as response:
        for line in response.read().decode().splitlines():
            action = json.loads(line)
            if "metaData" in action:
                schema_string = action["metaData"]["schemaString"]
            elif "file" in action:
                urls.append(action["file"]["url"])
    if schema_string is None:
        sys.exit("the answer has no metaData line")
    return schema_string, urls


def download(schema: pa.Schema):
    """The function each Spark task runs: fetch each file URL of its partition, read it."""

    def read(batches):
        for batch in batches:
            for url in batch.column("url").to_pylist():
                with urllib.request.urlopen(url) as response:
                    parquet = pq.ParquetFile(io.BytesIO(response.read()))
                for chunk in parquet.iter_batches():
                    yield chunk.cast(schema)

    return read


if __name__ == "__main__":
    main()
