//! Databases of the machine's PostgreSQL (trust authentication on loopback) that tests make
//! for replica sources: connecting, and a database made afresh.

use tokio_postgres::{Client, NoTls};

/// The machine's PostgreSQL, as its superuser.
pub const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// The connection string of database `name` of the machine's PostgreSQL.
pub fn conninfo(name: &str) -> String {
    format!("host=127.0.0.1 port=5432 user=postgres dbname={name}")
}

/// A client of `conninfo`, its connection driven by a task.
///
/// # Panics
/// If the server cannot be reached.
pub async fn connect(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .expect("connect to the machine's PostgreSQL");
    tokio::spawn(connection);
    client
}

/// Makes database `name` afresh (dropping one left by an earlier run), through `admin`.
///
/// # Panics
/// If the server refuses.
pub async fn recreate_database(admin: &Client, name: &str) {
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("make a database");
    }
}

/// Drops database `name`, through `admin`.
///
/// # Panics
/// If the server refuses.
pub async fn drop_database(admin: &Client, name: &str) {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop a database");
}
