import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * pgJDBC against the gateway as the demo tenant globex (orders from 1995 on, without
 * o_comment; lineitem): DatabaseMetaData, typed prepared statements (past the driver's
 * prepare threshold, where it switches to binary results), fetch-size streaming and result
 * metadata. Each check throws on a wrong answer; the last line printed is "ok".
 *
 * Usage: java -cp postgresql.jar:. JdbcClient HOST PORT
 */
public class JdbcClient {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/tollgate";
        try (Connection connection = DriverManager.getConnection(url, "globex", "globex")) {
            DatabaseMetaData meta = connection.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product name");

            List<String> catalogs = strings(meta.getCatalogs(), "TABLE_CAT");
            check(catalogs.equals(List.of("tollgate")), "catalogs: " + catalogs);

            List<String> schemas = strings(meta.getSchemas(), "TABLE_SCHEM");
            check(schemas.contains("tpch"), "schemas: " + schemas);

            List<String> tables = strings(
                meta.getTables(null, "tpch", "%", new String[] {"TABLE", "VIEW"}), "TABLE_NAME");
            check(tables.equals(List.of("lineitem", "orders")), "tables: " + tables);
            List<String> remarks = strings(
                meta.getTables(null, "tpch", "orders", new String[] {"TABLE", "VIEW"}), "REMARKS");
            check(remarks.equals(List.of("TPC-H orders table")), "remarks: " + remarks);
            // The keys the demo declares, as globex sees them.
            List<String> keys = strings(meta.getPrimaryKeys(null, "tpch", "orders"), "COLUMN_NAME");
            check(keys.equals(List.of("o_orderkey")), "primary keys: " + keys);
            List<String> keyNames = strings(meta.getPrimaryKeys(null, "tpch", "orders"), "PK_NAME");
            check(keyNames.equals(List.of("orders_pkey")), "primary key names: " + keyNames);
            List<String> imported = strings(
                meta.getImportedKeys(null, "tpch", "lineitem"), "PKTABLE_NAME");
            check(imported.equals(List.of("orders")), "imported keys: " + imported);
            List<String> importedColumns = strings(
                meta.getImportedKeys(null, "tpch", "lineitem"), "FKCOLUMN_NAME");
            check(importedColumns.equals(List.of("l_orderkey")),
                "imported key columns: " + importedColumns);
            List<String> exported = strings(
                meta.getExportedKeys(null, "tpch", "orders"), "FKTABLE_NAME");
            check(exported.equals(List.of("lineitem")), "exported keys: " + exported);
            List<String> acme = strings(meta.getTables(null, "tpch", "customer", null), "TABLE_NAME");
            check(acme.isEmpty(), "another tenant's table: " + acme);

            List<String> columns = new ArrayList<>();
            List<String> columnRemarks = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "tpch", "orders", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
                    columnRemarks.add(rs.getString("REMARKS"));
                }
            }
            check(columnRemarks.get(0).equals("Order key, unique per order"),
                "column remarks: " + columnRemarks);
            check(columns.equals(List.of(
                "o_orderkey:int8", "o_custkey:int8", "o_orderstatus:text", "o_totalprice:numeric",
                "o_orderdate:date", "o_orderpriority:text", "o_clerk:text", "o_shippriority:int4")),
                "columns: " + columns);

            List<String> types = strings(meta.getTypeInfo(), "TYPE_NAME");
            check(types.contains("int8") && types.contains("text") && types.contains("date"),
                "type info: " + types.size() + " types");

            long expected;
            try (Statement statement = connection.createStatement();
                 ResultSet rs = statement.executeQuery(
                     "SELECT count(*) FROM tpch.orders WHERE o_orderkey < 1000")) {
                rs.next();
                expected = rs.getLong(1);
            }
            check(expected > 0, "orders below key 1000");
            // Seven executions: pgJDBC prepares server-side after five, then reads binary.
            try (PreparedStatement prepared = connection.prepareStatement(
                     "SELECT o_orderkey, o_orderdate, o_totalprice FROM tpch.orders "
                         + "WHERE o_orderkey < ? AND o_orderdate >= ?")) {
                for (int run = 0; run < 7; run++) {
                    prepared.setLong(1, 1000);
                    prepared.setDate(2, java.sql.Date.valueOf("1995-01-01"));
                    long rows = 0;
                    try (ResultSet rs = prepared.executeQuery()) {
                        ResultSetMetaData shape = rs.getMetaData();
                        check(shape.getColumnTypeName(1).equals("int8")
                                && shape.getColumnTypeName(2).equals("date")
                                && shape.getColumnTypeName(3).equals("numeric"),
                            "result types");
                        while (rs.next()) {
                            check(rs.getLong(1) < 1000, "key filter");
                            check(!rs.getDate(2).before(java.sql.Date.valueOf("1995-01-01")), "date filter");
                            check(rs.getBigDecimal(3).signum() > 0, "price");
                            rows++;
                        }
                    }
                    check(rows == expected, "run " + run + ": " + rows + " rows, expected " + expected);
                }
            }

            long total;
            try (Statement statement = connection.createStatement();
                 ResultSet rs = statement.executeQuery("SELECT count(*) FROM tpch.orders")) {
                rs.next();
                total = rs.getLong(1);
            }
            connection.setAutoCommit(false);
            long streamed = 0;
            try (Statement statement = connection.createStatement()) {
                statement.setFetchSize(100);
                try (ResultSet rs = statement.executeQuery("SELECT o_orderkey FROM tpch.orders")) {
                    while (rs.next()) {
                        streamed++;
                    }
                }
            }
            connection.commit();
            check(streamed == total, "fetch-size streaming: " + streamed + " of " + total);
        }
        System.out.println("ok");
    }

    private static List<String> strings(ResultSet rs, String column) throws SQLException {
        List<String> values = new ArrayList<>();
        try (rs) {
            while (rs.next()) {
                values.add(rs.getString(column));
            }
        }
        return values;
    }

    private static void check(boolean holds, String what) {
        if (!holds) {
            throw new AssertionError(what);
        }
    }
}
