//! Settings from environment variables, the way a Vercel-style deployment is
//! configured, with secrets from the environment or from AWS Secrets Manager /
//! SSM Parameter Store through the AWS Parameters and Secrets Lambda
//! Extension's local HTTP interface (no AWS SDK in the binary).
//!
//! | variable | meaning |
//! |---|---|
//! | `INBOUND_SCHEME` | preset name, or a scheme description as JSON (one route) |
//! | `INBOUND_PATH` | that route's path (default `/webhook`) |
//! | `INBOUND_SECRET` / `_ID` / `_PARAMETER` | its secret(s): value, Secrets Manager id, SSM name |
//! | `HOOKSEAL_ROUTES` | several routes as JSON: `[{"path","scheme","secret_env"/"secret_id"/"secret_parameter"}]` |
//! | `WEBHOOK_URL` | relay every verified message here (POST) |
//! | `OUTBOUND_SCHEME` | relay signature scheme: `x-signature` (default), `native`, `standard`, … |
//! | `WEBHOOK_SECRET` / `_ID` / `_PARAMETER` | the relay's signing secret |
//! | `DATABASE_URL` / `_ID` / `_PARAMETER` | store verified messages in the outbox instead of relaying; enables dispatch |
//! | `HOOKSEAL_APP` | the app id events are stored under (with `DATABASE_URL`) |
//! | `DISPATCH_TOKEN` / `_ID` / `_PARAMETER` | bearer token for `POST /dispatch` |
//! | `HOOKSEAL_ALLOW` | CIDRs the dispatcher may deliver to besides public addresses |
//! | `PGSSLROOTCERT` | extra CA certificates (PEM) for a `?sslmode=require` database URL |
//! | `MAX_BODY_BYTES` | body limit (default 262144) |
//! | `TOLERANCE_SECONDS` | replay tolerance (default 300) |
//! | `RELAY_TIMEOUT_SECONDS` | relay timeout (default 10) |
//!
//! A secret value may hold several secrets separated by whitespace (during a
//! rotation every one of them verifies).

use std::time::Duration;

use hookseal::{Location, Scheme, Secret};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Why the function cannot start. Messages name variables, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is missing or malformed.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret could not be fetched from the Parameters and Secrets extension.
    #[error(
        "{var}: cannot fetch the secret through the Parameters and Secrets extension: {reason}"
    )]
    Fetch {
        /// The variable naming the secret.
        var: String,
        /// What went wrong (status or transport error; never the value).
        reason: String,
    },
}

fn invalid(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: var.to_owned(),
        reason: reason.into(),
    }
}

/// One receiving route.
pub struct RouteConfig {
    /// The path, e.g. `/webhook`.
    pub path: String,
    /// How requests on it are signed.
    pub scheme: Scheme,
    /// Secrets accepted on it.
    pub secrets: Vec<Secret>,
}

/// Everything the function needs, resolved at cold start.
pub struct Settings {
    /// Receiving routes.
    pub routes: Vec<RouteConfig>,
    /// Largest body accepted.
    pub max_body: usize,
    /// Replay tolerance.
    pub tolerance: Duration,
    /// Relay target, when set.
    pub relay: Option<RelayConfig>,
    /// Database, when set.
    pub database: Option<DatabaseConfig>,
    /// Bearer token for `POST /dispatch`.
    pub dispatch_token: Option<Zeroizing<String>>,
    /// Extra destinations the dispatcher may reach.
    pub allow: Vec<hookseal_dispatch::IpNet>,
}

/// Where and how verified messages are relayed.
pub struct RelayConfig {
    /// `WEBHOOK_URL`.
    pub url: String,
    /// The outbound scheme (signature in a header).
    pub scheme: Scheme,
    /// The outbound secret.
    pub secret: Secret,
    /// Timeout of the relay request.
    pub timeout: Duration,
}

/// The outbox database.
pub struct DatabaseConfig {
    /// Connection URL (may carry a password; never logged).
    pub url: Zeroizing<String>,
    /// App id events are stored under.
    pub app: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    path: String,
    scheme: SchemeSpec,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_id: Option<String>,
    #[serde(default)]
    secret_parameter: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SchemeSpec {
    Preset(String),
    Described(Box<Scheme>),
}

/// Reads variables through `env` (so tests need not touch the process
/// environment) and fetches secrets with `fetch`.
pub struct Loader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    extension: Extension,
}

/// The AWS Parameters and Secrets Lambda Extension's local HTTP interface.
#[derive(Clone)]
pub struct Extension {
    /// `http://localhost:<port>` (port from `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, default 2773).
    pub base: String,
    /// `AWS_SESSION_TOKEN`, sent as `X-Aws-Parameters-Secrets-Token`.
    pub token: Option<Zeroizing<String>>,
}

impl<'a> Loader<'a> {
    /// A loader over `env`.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        let port = env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").unwrap_or_else(|| "2773".into());
        Loader {
            env,
            extension: Extension {
                base: format!("http://localhost:{port}"),
                token: env("AWS_SESSION_TOKEN").map(Zeroizing::new),
            },
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// `NAME`, or the secret named by `NAME_ID` (Secrets Manager) or
    /// `NAME_PARAMETER` (SSM, decrypted).
    async fn secret_value(&self, name: &str) -> Result<Option<Zeroizing<String>>, ConfigError> {
        if let Some(v) = self.var(name) {
            return Ok(Some(Zeroizing::new(v)));
        }
        let id_var = format!("{name}_ID");
        if let Some(id) = self.var(&id_var) {
            return self.extension.secrets_manager(&id_var, &id).await.map(Some);
        }
        let param_var = format!("{name}_PARAMETER");
        if let Some(p) = self.var(&param_var) {
            return self.extension.parameter(&param_var, &p).await.map(Some);
        }
        Ok(None)
    }

    fn parse_secrets(var: &str, value: &str) -> Result<Vec<Secret>, ConfigError> {
        let secrets = value
            .split_whitespace()
            .map(|s| Secret::new(s).map_err(|e| invalid(var, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if secrets.is_empty() {
            return Err(invalid(var, "no secret in the value"));
        }
        Ok(secrets)
    }

    fn scheme(var: &str, spec: SchemeSpec) -> Result<Scheme, ConfigError> {
        let scheme = match spec {
            SchemeSpec::Preset(text) => Scheme::from_text(&text),
            SchemeSpec::Described(s) => s.validate().map(|()| *s),
        };
        scheme.map_err(|e| invalid(var, e.to_string()))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.var(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| invalid(name, "not a number")),
        }
    }

    /// Resolves every setting.
    pub async fn load(&self) -> Result<Settings, ConfigError> {
        let mut routes = Vec::new();
        if let Some(json) = self.var("HOOKSEAL_ROUTES") {
            let specs: Vec<RouteSpec> = serde_json::from_str(&json)
                .map_err(|e| invalid("HOOKSEAL_ROUTES", e.to_string()))?;
            for (i, spec) in specs.into_iter().enumerate() {
                let var = format!("HOOKSEAL_ROUTES[{i}]");
                let secret = match (&spec.secret_env, &spec.secret_id, &spec.secret_parameter) {
                    (Some(env), None, None) => self
                        .var(env)
                        .map(Zeroizing::new)
                        .ok_or_else(|| invalid(env, "not set"))?,
                    (None, Some(id), None) => self.extension.secrets_manager(&var, id).await?,
                    (None, None, Some(p)) => self.extension.parameter(&var, p).await?,
                    _ => {
                        return Err(invalid(
                            &var,
                            "give exactly one of secret_env, secret_id, secret_parameter",
                        ))
                    }
                };
                routes.push(RouteConfig {
                    path: spec.path,
                    scheme: Self::scheme(&var, spec.scheme)?,
                    secrets: Self::parse_secrets(&var, &secret)?,
                });
            }
        }
        if let Some(scheme) = self.var("INBOUND_SCHEME") {
            let secret = self
                .secret_value("INBOUND_SECRET")
                .await?
                .ok_or_else(|| invalid("INBOUND_SECRET", "not set (nor _ID, _PARAMETER)"))?;
            let scheme =
                Scheme::from_text(&scheme).map_err(|e| invalid("INBOUND_SCHEME", e.to_string()))?;
            routes.push(RouteConfig {
                path: self
                    .var("INBOUND_PATH")
                    .unwrap_or_else(|| "/webhook".into()),
                scheme,
                secrets: Self::parse_secrets("INBOUND_SECRET", &secret)?,
            });
        }
        for (i, r) in routes.iter().enumerate() {
            let url_safe = |b: u8| b.is_ascii_alphanumeric() || b"/-._~".contains(&b);
            if !r.path.starts_with('/')
                || r.path == "/dispatch"
                || r.path.len() > 512
                || !r.path.bytes().all(url_safe)
            {
                return Err(invalid(
                    "routes",
                    format!(
                        "path `{}` must start with /, use only letters, digits and / - . _ ~, \
                         and not be /dispatch",
                        r.path
                    ),
                ));
            }
            if routes[..i].iter().any(|o| o.path == r.path) {
                return Err(invalid(
                    "routes",
                    format!("path `{}` is configured twice", r.path),
                ));
            }
        }

        let relay = match self.var("WEBHOOK_URL") {
            None => None,
            Some(url) => {
                let parsed =
                    reqwest::Url::parse(&url).map_err(|e| invalid("WEBHOOK_URL", e.to_string()))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("WEBHOOK_URL", "must be an http(s) URL"));
                }
                let name = self
                    .var("OUTBOUND_SCHEME")
                    .unwrap_or_else(|| "x-signature".into());
                let scheme = Self::scheme("OUTBOUND_SCHEME", SchemeSpec::Preset(name))?;
                if !matches!(scheme.signature, Location::Header(_)) {
                    return Err(invalid(
                        "OUTBOUND_SCHEME",
                        "the relay signs with a header scheme",
                    ));
                }
                let secret = self
                    .secret_value("WEBHOOK_SECRET")
                    .await?
                    .ok_or_else(|| invalid("WEBHOOK_SECRET", "not set (nor _ID, _PARAMETER)"))?;
                let mut secrets = Self::parse_secrets("WEBHOOK_SECRET", &secret)?;
                if secrets.len() != 1 {
                    return Err(invalid("WEBHOOK_SECRET", "the relay signs with one secret"));
                }
                Some(RelayConfig {
                    url,
                    scheme,
                    secret: secrets.remove(0),
                    timeout: Duration::from_secs(self.number("RELAY_TIMEOUT_SECONDS", 10u64)?),
                })
            }
        };

        let database = match self.secret_value("DATABASE_URL").await? {
            None => None,
            Some(url) => Some(DatabaseConfig {
                url,
                app: self
                    .var("HOOKSEAL_APP")
                    .ok_or_else(|| invalid("HOOKSEAL_APP", "required with DATABASE_URL"))?,
            }),
        };
        if routes.is_empty() && database.is_none() {
            return Err(invalid(
                "INBOUND_SCHEME",
                "nothing to do: configure a route (INBOUND_SCHEME or HOOKSEAL_ROUTES) or DATABASE_URL",
            ));
        }
        let allow = match self.var("HOOKSEAL_ALLOW") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim().parse().map_err(|_| {
                        invalid("HOOKSEAL_ALLOW", format!("`{s}` is not a CIDR network"))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Settings {
            routes,
            max_body: self.number("MAX_BODY_BYTES", hookseal::DEFAULT_MAX_BODY)?,
            tolerance: Duration::from_secs(self.number("TOLERANCE_SECONDS", 300u64)?),
            relay,
            database,
            dispatch_token: self.secret_value("DISPATCH_TOKEN").await?,
            allow,
        })
    }
}

impl Extension {
    async fn get(
        &self,
        var: &str,
        path_and_query: String,
    ) -> Result<serde_json::Value, ConfigError> {
        let fetch = |reason: String| ConfigError::Fetch {
            var: var.to_owned(),
            reason,
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| fetch(e.to_string()))?;
        let mut req = client.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = &self.token {
            req = req.header("X-Aws-Parameters-Secrets-Token", t.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fetch(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fetch(format!("HTTP {status}")));
        }
        let text = Zeroizing::new(
            resp.text()
                .await
                .map_err(|e| fetch(e.without_url().to_string()))?,
        );
        serde_json::from_str(&text).map_err(|_| fetch("answer is not JSON".into()))
    }

    /// `GET /secretsmanager/get?secretId=…` → `SecretString`.
    pub async fn secrets_manager(
        &self,
        var: &str,
        id: &str,
    ) -> Result<Zeroizing<String>, ConfigError> {
        let v = self
            .get(
                var,
                format!(
                    "/secretsmanager/get?secretId={}",
                    hookseal::percent_encode(id)
                ),
            )
            .await?;
        v.get("SecretString")
            .and_then(|s| s.as_str())
            .map(|s| Zeroizing::new(s.to_owned()))
            .ok_or_else(|| ConfigError::Fetch {
                var: var.to_owned(),
                reason: "no SecretString in the answer (binary secrets are not supported)".into(),
            })
    }

    /// `GET /systemsmanager/parameters/get?name=…&withDecryption=true` → `Parameter.Value`.
    pub async fn parameter(&self, var: &str, name: &str) -> Result<Zeroizing<String>, ConfigError> {
        let v = self
            .get(
                var,
                format!(
                    "/systemsmanager/parameters/get?name={}&withDecryption=true",
                    hookseal::percent_encode(name)
                ),
            )
            .await?;
        v.pointer("/Parameter/Value")
            .and_then(|s| s.as_str())
            .map(|s| Zeroizing::new(s.to_owned()))
            .ok_or_else(|| ConfigError::Fetch {
                var: var.to_owned(),
                reason: "no Parameter.Value in the answer".into(),
            })
    }
}
