//! `hookseal install`: the portable flavour into a database that loads no
//! library of ours, as its owner (`hookseal_postgres::install`).

use clap::Args;

use crate::{failed, print, with_database, Fail};

/// `hookseal install` arguments.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// `postgres://` URL of the database owner, or any role that may create
    /// a schema and pgcrypto in it (never printed).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "print_sql"
    )]
    database_url: Option<String>,
    /// Write the install script to standard output and connect nowhere: for
    /// migrations run by your own tool (sqlx, Flyway, Prisma). It leaves the
    /// database `hookseal install` leaves.
    #[arg(long, conflicts_with = "database_url")]
    print_sql: bool,
    /// Register the scripts with pg_tle instead (RDS, Aurora, Supabase), as
    /// a role granted pgtle_admin; then `CREATE EXTENSION hookseal` and
    /// `ALTER EXTENSION hookseal UPDATE` work as for any extension.
    #[arg(long, conflicts_with = "print_sql")]
    pg_tle: bool,
}

/// Installs, upgrades or finds current; prints what it did.
pub fn run(args: InstallArgs) -> Result<u8, Fail> {
    if args.print_sql {
        print(hookseal_postgres::install::print_sql().trim_end())?;
        return Ok(0);
    }
    let Some(url) = args.database_url else {
        return Err(failed("--database-url (or DATABASE_URL) is needed"));
    };
    with_database(&url, |mut client| async move {
        let done = if args.pg_tle {
            hookseal_postgres::install::install_pg_tle(&mut client)
                .await
                .map(|r| r.to_string())
        } else {
            hookseal_postgres::install::install(&mut client)
                .await
                .map(|r| r.to_string())
        };
        print(&done.map_err(|e| failed(format!("nothing installed: {e}")))?)?;
        Ok(0)
    })
}
