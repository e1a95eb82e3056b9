#!/usr/bin/env python3
"""A Spark job that reads one Tollgate dataset over Arrow Flight SQL, one task per endpoint.

The driver logs in and asks for the FlightInfo of `SELECT * FROM tpch.<dataset>`. The tickets
of its endpoints become a DataFrame with one row and one partition per endpoint, and
`mapInArrow` has each Spark task redeem its ticket with DoGet and pass the Arrow record batches
on to Spark as they are: no row-by-row conversion in Python. The tenant's bearer token travels
to the tasks with the mapped function.

    python bi-examples/spark/read_dataset.py --dataset orders --user globex --password globex

Prints `rows=<n>`, then with `--group-by COLUMN` the row count per value of that column.
"""

import argparse
import os
import sys

import pyarrow as pa
import pyarrow.flight as flight

STATEMENT_QUERY_TYPE = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"

# Arrow types Spark 3.5 cannot take, and the type each is read as. Tollgate sends text as
# Utf8View, as DataFusion reads it from Parquet.
SPARK_TYPES = {
    pa.string_view(): pa.string(),
    pa.large_string(): pa.string(),
    pa.binary_view(): pa.binary(),
    pa.large_binary(): pa.binary(),
}


def main() -> None:
    args = parse_args()
    # Spark's Python workers must run this interpreter (it has pyarrow), and Spark listens on
    # loopback only. Both must be set before the JVM starts.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    with flight.FlightClient(args.uri) as client:
        header = client.authenticate_basic_token(args.user, args.password)
        query = statement_query(f"SELECT * FROM tpch.{args.dataset}")
        info = client.get_flight_info(query, flight.FlightCallOptions(headers=[header]))
    tickets = [(endpoint.ticket.ticket,) for endpoint in info.endpoints]
    spark_schema = from_arrow_schema(
        pa.schema(field.with_type(SPARK_TYPES.get(field.type, field.type)) for field in info.schema)
    )

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("tollgate-read-dataset")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        endpoints = spark.createDataFrame(
            spark.sparkContext.parallelize(tickets, max(1, len(tickets))), "ticket binary"
        )
        rows = endpoints.mapInArrow(
            redeem_tickets(args.uri, header, to_arrow_schema(spark_schema)), spark_schema
        )
        if args.group_by:
            # Read the endpoints once for both results.
            rows = rows.cache()
        print(f"endpoints={len(tickets)}")
        print(f"rows={rows.count()}")
        if args.group_by:
            rows.groupBy(args.group_by).count().orderBy(args.group_by).show()
    finally:
        spark.stop()


def redeem_tickets(uri: str, header: tuple[bytes, bytes], schema: pa.Schema):
    """The function each Spark task runs: DoGet for each ticket of its partition.

    Batches are cast to `schema`, the Arrow form of the Spark schema (view types become plain).
    """

    def read(batches):
        options = flight.FlightCallOptions(headers=[header])
        with flight.FlightClient(uri) as client:
            for batch in batches:
                for ticket in batch.column("ticket").to_pylist():
                    for chunk in client.do_get(flight.Ticket(ticket), options):
                        yield chunk.data.cast(schema)

    return read


def statement_query(sql: str) -> flight.FlightDescriptor:
    """The descriptor of a Flight SQL query, protobuf-encoded by hand (no protobuf package).

    `Any { string type_url = 1; bytes value = 2; }` around
    `CommandStatementQuery { string query = 1; }`.
    """
    command = _field(1, sql.encode())
    return flight.FlightDescriptor.for_command(
        _field(1, STATEMENT_QUERY_TYPE.encode()) + _field(2, command)
    )


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field: key (field number, wire type 2), length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default="acme")
    parser.add_argument("--dataset", default="lineitem", help="a tpch table (default lineitem)")
    parser.add_argument("--group-by", help="also count the rows per value of this column")
    return parser.parse_args()


if __name__ == "__main__":
    main()
