import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;

/**
 * A tenant's first look at its data through plain JDBC and pgJDBC, as a BI tool's JDBC
 * connection does: the tables DatabaseMetaData lists with their remarks, the columns of
 * tpch.orders with their types, revenue per order priority from a PreparedStatement, and the
 * tenant's own usage.
 *
 * Usage: java -cp postgresql.jar TollgateJdbc.java [--host H] [--port P] [--user U]
 * [--password W] [--since YYYY-MM-DD]
 */
public class TollgateJdbc {
    public static void main(String[] args) throws SQLException {
        Map<String, String> options = new HashMap<>(Map.of(
            "--host", "127.0.0.1", "--port", "6432", "--user", "acme", "--password", "acme",
            "--since", "1995-01-01"));
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!options.containsKey(args[i])) {
                throw new IllegalArgumentException("unknown option " + args[i]);
            }
            options.put(args[i], args[i + 1]);
        }
        String url = "jdbc:postgresql://" + options.get("--host") + ":" + options.get("--port")
            + "/tollgate";
        try (Connection connection = DriverManager.getConnection(
                 url, options.get("--user"), options.get("--password"))) {
            DatabaseMetaData meta = connection.getMetaData();
            System.out.println("connected to " + meta.getDatabaseProductName() + " "
                + meta.getDatabaseProductVersion());

            try (ResultSet tables = meta.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                while (tables.next()) {
                    String remarks = tables.getString("REMARKS");
                    System.out.println("table " + tables.getString("TABLE_SCHEM") + "."
                        + tables.getString("TABLE_NAME")
                        + (remarks == null ? "" : ": " + remarks));
                }
            }

            try (ResultSet columns = meta.getColumns(null, "tpch", "orders", "%")) {
                while (columns.next()) {
                    System.out.println("column tpch.orders." + columns.getString("COLUMN_NAME")
                        + " " + columns.getString("TYPE_NAME"));
                }
            }

            String revenue = "SELECT o_orderpriority, count(*) AS orders, sum(o_totalprice) AS revenue "
                + "FROM tpch.orders WHERE o_orderdate >= ? "
                + "GROUP BY o_orderpriority ORDER BY o_orderpriority";
            try (PreparedStatement statement = connection.prepareStatement(revenue)) {
                statement.setDate(1, java.sql.Date.valueOf(options.get("--since")));
                try (ResultSet rows = statement.executeQuery()) {
                    while (rows.next()) {
                        System.out.println("priority " + rows.getString(1) + " orders="
                            + rows.getLong(2) + " revenue=" + rows.getBigDecimal(3));
                    }
                }
            }

            try (ResultSet usage = connection.createStatement().executeQuery(
                     "SELECT count(*), sum(rows_returned) FROM tollgate.usage")) {
                usage.next();
                System.out.println("usage queries=" + usage.getLong(1)
                    + " rows_returned=" + usage.getLong(2));
            }
        }
    }
}
