//! PostgreSQL, through tokio-postgres with a deadpool pool.
//!
//! Reads run on a pooled connection; writes in a transaction, run again when a concurrent writer
//! made them conflict. Statements are prepared once per connection and cached. A connection found
//! closed (the server restarted, a network path dropped) is replaced when it comes out of the pool.
//!
//! TLS follows libpq's `sslmode`: `disable`; `prefer` (the default) and `require` encrypt without
//! checking the server's certificate, as libpq does; `verify-ca` and `verify-full` check it
//! against the system's roots, or against the file named by `sslrootcert`.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::db::{Backend, Cell, Conn, Param, Retryable, Row, Work};
use super::error::{Result, StoreError};

/// Connections in the pool, at most.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a pooled connection before the store counts as unavailable.
const WAIT: Duration = Duration::from_secs(5);
/// Times a write is run again after conflicting with a concurrent writer.
const CONFLICT_RETRIES: u32 = 5;

pub struct Postgres {
    pool: Pool,
}

impl Postgres {
    /// Connects and runs `setup` (the migrations) under an advisory lock, so that replicas
    /// starting together run them once.
    pub async fn connect(url: &str, setup: Work<()>) -> Result<Self> {
        let (config, tls) = tls::config(url)?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Failed(format!("cannot build the connection pool: {e}")))?;
        let store = Self { pool };
        let client = store.client().await?;
        client
            .batch_execute("SELECT pg_advisory_lock(7246385)")
            .await
            .map_err(unavailable)?;
        let done = setup(&mut PgConn::Client(&client)).await;
        client
            .batch_execute("SELECT pg_advisory_unlock(7246385)")
            .await
            .map_err(unavailable)?;
        done?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => unavailable(e),
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    pub async fn read<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let client = self.client().await?;
        work(&mut PgConn::Client(&client)).await
    }

    /// Runs `work` in a transaction, again (up to a few times) when it conflicts with a concurrent
    /// writer.
    pub async fn write<T: Send + 'static>(&self, mut work: Retryable<T>) -> Result<T> {
        let mut tries = 0;
        loop {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(unavailable)?;
            let result = work(&mut PgConn::Tx(&tx)).await;
            let result = match result {
                Ok(v) => tx.commit().await.map(|()| v).map_err(StoreError::from),
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "a write met a concurrent writer; running it again");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                }
                other => return other,
            }
        }
    }
}

fn unavailable(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// [`Conn`] on a pooled connection or a transaction.
enum PgConn<'a> {
    Client(&'a deadpool_postgres::Client),
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

impl PgConn<'_> {
    async fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        Ok(match self {
            Self::Client(c) => c.prepare_cached(sql).await?,
            Self::Tx(t) => t.prepare_cached(sql).await?,
        })
    }

    fn client(&self) -> &tokio_postgres::Client {
        match self {
            Self::Client(c) => c,
            Self::Tx(t) => t.client(),
        }
    }

    async fn rows(&self, sql: &str, params: &[Param<'_>], fresh: bool) -> Result<Vec<Row>> {
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = if fresh {
            // An unnamed statement, planned at each call with the tables as they are then.
            self.client().query(sql, &params).await?
        } else {
            let stmt = self.prepare(sql).await?;
            self.client().query(&stmt, &params).await?
        };
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let columns: Arc<[String]> = first
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        rows.iter()
            .map(|r| Ok(Row::new(columns.clone(), cells(r)?)))
            .collect()
    }
}

impl Conn for PgConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        self.rows(sql, params, false).boxed()
    }

    fn query_fresh<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        self.rows(sql, params, true).boxed()
    }

    fn execute<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Param<'a>],
    ) -> BoxFuture<'a, Result<u64>> {
        async move {
            let params: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let stmt = self.prepare(sql).await?;
            Ok(self.client().execute(&stmt, &params).await?)
        }
        .boxed()
    }

    fn batch<'a>(&'a mut self, script: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { Ok(self.client().batch_execute(script).await?) }.boxed()
    }
}

/// A row's values, by their column types.
fn cells(row: &tokio_postgres::Row) -> Result<Vec<Cell>> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let cell = match *col.type_() {
                Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)?
                    .map(|v| Cell::Int(v.into())),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)?
                    .map(|v| Cell::Int(v.into())),
                Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Cell::Float),
                Type::FLOAT4 => row
                    .try_get::<_, Option<f32>>(i)?
                    .map(|v| Cell::Float(v.into())),
                Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool),
                Type::TIMESTAMPTZ => row
                    .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)?
                    .map(|t| Cell::Time(t.timestamp_millis())),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
                }
                ref other => {
                    return Err(StoreError::Corrupt(format!(
                        "column `{}` has type {other}, which the store does not read",
                        col.name()
                    )));
                }
            };
            Ok(cell.unwrap_or(Cell::Null))
        })
        .collect()
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Text(t) => t.to_sql(ty, out),
            Param::Bool(b) => b.to_sql(ty, out),
            Param::Int(v) => match *ty {
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::Time(ms) => match *ty {
                Type::INT8 => ms.to_sql(ty, out),
                _ => chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
                    .ok_or("a time out of range")?
                    .to_sql(ty, out),
            },
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::FLOAT8
                | Type::BOOL
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::TIMESTAMPTZ
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

/// TLS as libpq's `sslmode` asks.
mod tls {
    use std::str::FromStr;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
    use tokio_postgres_rustls::MakeRustlsConnect;

    use super::super::error::{Result, StoreError};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// The connection settings and TLS connector for a `postgres://` URL.
    pub fn config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
        let bad = |e: String| StoreError::Failed(format!("store.url: {e}"));
        let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mut mode = None;
        let mut root = None;
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .filter_map(|(k, v)| match k.as_ref() {
                "sslmode" if v == "verify-ca" || v == "verify-full" => {
                    mode = Some(v.into_owned());
                    None
                }
                "sslrootcert" => {
                    root = Some(v.into_owned());
                    None
                }
                _ => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        parsed.set_query(None);
        if !kept.is_empty() || mode.is_some() {
            let mut q = parsed.query_pairs_mut();
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            if mode.is_some() {
                q.append_pair("sslmode", "require");
            }
        }
        let config =
            tokio_postgres::Config::from_str(parsed.as_str()).map_err(|e| bad(e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let tls = match (mode, root) {
            (Some(_), Some(path)) => {
                let mut roots = rustls::RootCertStore::empty();
                let pem = std::fs::read(&path)
                    .map_err(|e| bad(format!("cannot read sslrootcert {path}: {e}")))?;
                use rustls::pki_types::pem::PemObject;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| bad(format!("sslrootcert {path}: {e}")))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            (Some(_), None) => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .map_err(|e| bad(e.to_string()))?
                    .with_no_client_auth()
            }
            (None, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider())))
                .with_no_client_auth(),
        };
        Ok((config, MakeRustlsConnect::new(tls)))
    }

    /// libpq's `prefer` and `require`: the connection is encrypted, the server not authenticated.
    #[derive(Debug)]
    struct Unverified(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for Unverified {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> std::result::Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
