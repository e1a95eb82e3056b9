#!/usr/bin/env python3
"""Tollgate over Arrow Flight with nothing but pyarrow: one query, its endpoints read in parallel.

A Flight SQL query is a FlightDescriptor whose command is a protobuf `CommandStatementQuery`
wrapped in a `google.protobuf.Any`. GetFlightInfo answers with the result's schema and one or
more endpoints, each holding a ticket; the tickets can be redeemed with DoGet in any order, in
parallel, by any process that holds the tenant's token. This script reads every endpoint on
its own thread and puts the parts together:

    python bi-examples/flight-python/parallel_endpoints.py --user acme --password acme

It prints `endpoints=<n> rows=<n>` and the first rows.
"""

import argparse
import concurrent.futures
import time

import pyarrow as pa
import pyarrow.flight as flight

DEFAULT_QUERY = "SELECT l_orderkey, l_partkey, l_quantity, l_extendedprice FROM tpch.lineitem"

STATEMENT_QUERY_TYPE = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
# The location that means "the server that issued the ticket" (also meant by no location).
REUSE_CONNECTION = "arrow-flight-reuse-connection://?"


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


def login(client: flight.FlightClient, user: str, password: str) -> flight.FlightCallOptions:
    """Call options carrying the bearer token that a basic-auth Handshake returns."""
    header = client.authenticate_basic_token(user, password)
    return flight.FlightCallOptions(headers=[header])


def read_endpoints(
    client: flight.FlightClient,
    info: flight.FlightInfo,
    options: flight.FlightCallOptions,
    workers: int = 4,
) -> pa.Table:
    """Every endpoint of `info` read on a thread pool (one DoGet each), in endpoint order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(
            pool.map(lambda endpoint: read_endpoint(client, endpoint, options), info.endpoints)
        )
    return pa.concat_tables(parts) if parts else info.schema.empty_table()


def read_endpoint(
    client: flight.FlightClient,
    endpoint: flight.FlightEndpoint,
    options: flight.FlightCallOptions,
) -> pa.Table:
    """One endpoint's rows, from the server it names or else from the one we asked."""
    for location in endpoint.locations:
        uri = location.uri.decode()
        if uri != REUSE_CONNECTION:
            with flight.FlightClient(uri) as elsewhere:
                return elsewhere.do_get(endpoint.ticket, options).read_all()
    return client.do_get(endpoint.ticket, options).read_all()


def main() -> None:
    args = parse_args()
    with flight.FlightClient(args.uri) as client:
        options = login(client, args.user, args.password)
        started = time.perf_counter()
        info = client.get_flight_info(statement_query(args.query), options)
        table = read_endpoints(client, info, options, args.workers)
        elapsed = time.perf_counter() - started

    print(f"endpoints={len(info.endpoints)} rows={table.num_rows}")
    print(f"read in {elapsed:.2f} s with {args.workers} threads")
    print(table.schema)
    print(table.slice(0, 5).to_pandas().to_string(index=False))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default="acme")
    parser.add_argument("--query", default=DEFAULT_QUERY)
    parser.add_argument("--workers", type=int, default=4, help="threads reading endpoints")
    return parser.parse_args()


if __name__ == "__main__":
    main()
