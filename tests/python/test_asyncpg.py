"""asyncpg over the pgwire front end: binary results in Python types (intervals too),
parameters typed by their casts, a cursor in a transaction, and COPY of a query.
"""

import asyncio
import datetime
import io
from decimal import Decimal

import asyncpg


def run(coroutine_function, pg_conninfo, user="acme"):
    info = dict(part.split("=", 1) for part in pg_conninfo(user).split())

    async def with_connection():
        connection = await asyncpg.connect(
            host=info["host"],
            port=int(info["port"]),
            user=info["user"],
            password=info["password"],
            database=info["dbname"],
        )
        try:
            return await coroutine_function(connection)
        finally:
            await connection.close()

    return asyncio.run(with_connection())


def test_binary_rows_in_python_types(pg_conninfo):
    async def fetch(connection):
        return await connection.fetch(
            "SELECT o_orderkey, o_totalprice, o_orderdate, o_orderpriority FROM tpch.orders "
            "WHERE o_orderkey < $1 ORDER BY o_orderkey",
            10,
        )

    rows = run(fetch, pg_conninfo)
    assert [row["o_orderkey"] for row in rows] == sorted(row["o_orderkey"] for row in rows)
    assert len(rows) > 0
    first = rows[0]
    assert isinstance(first["o_totalprice"], Decimal)
    assert isinstance(first["o_orderdate"], datetime.date)
    assert isinstance(first["o_orderpriority"], str)


def test_intervals_in_text_and_binary(pg_conninfo):
    async def fetch(connection):
        binary = await connection.fetchval("SELECT INTERVAL '1 day 2 hours 3.5 seconds'")
        text = await connection.fetchval("SELECT CAST(INTERVAL '1 month 2 days' AS text)")
        return binary, text

    binary, text = run(fetch, pg_conninfo)
    assert binary == datetime.timedelta(days=1, hours=2, seconds=3.5)
    assert text  # the engine's own spelling of the interval


def test_parameters_typed_by_their_casts(pg_conninfo):
    async def fetch(connection):
        return await connection.fetchrow(
            "SELECT $1::bigint, $2::double precision, $3::text, $4::boolean, $5::date",
            7,
            2.5,
            "zürich",
            True,
            datetime.date(2024, 2, 29),
        )

    assert tuple(run(fetch, pg_conninfo)) == (7, 2.5, "zürich", True, datetime.date(2024, 2, 29))


def test_cursor_and_copy_of_a_query(pg_conninfo):
    async def read(connection):
        total = await connection.fetchval("SELECT count(*) FROM tpch.orders")
        seen = 0
        async with connection.transaction():
            async for _ in connection.cursor("SELECT o_orderkey FROM tpch.orders", prefetch=500):
                seen += 1
        buffer = io.BytesIO()
        status = await connection.copy_from_query(
            "SELECT r_regionkey, r_name FROM tpch.region ORDER BY r_regionkey", output=buffer
        )
        return total, seen, status, buffer.getvalue().decode()

    total, seen, status, copied = run(read, pg_conninfo)
    assert seen == total
    assert status == "COPY 5"
    assert copied.splitlines()[0] == "0\tAFRICA"
    assert len(copied.splitlines()) == 5


def test_copy_of_a_dataset(pg_conninfo):
    async def read(connection):
        buffer = io.BytesIO()
        status = await connection.copy_from_table(
            "region", schema_name="tpch", columns=["r_regionkey", "r_name"], output=buffer,
            format="csv",
        )
        return status, buffer.getvalue().decode()

    status, copied = run(read, pg_conninfo)
    assert status == "COPY 5"
    assert sorted(copied.splitlines()) == [
        "0,AFRICA", "1,AMERICA", "2,ASIA", "3,EUROPE", "4,MIDDLE EAST",
    ]
